//! A counter per path, kept in the app's sealed key-value store
//! (`wasi:keyvalue@0.2.0-draft2`, as Spin apps use it): `GET /count/NAME`
//! adds one and answers the new value; `GET /count/NAME?peek` only reads it.

use wasip2::http::types::{Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam};

wit_bindgen::generate!({
    path: "../../../crates/keyvalue/wit/draft2",
    world: "wasi:keyvalue/imports@0.2.0-draft2",
});

use wasi::keyvalue::{atomics, store};

struct Counter;

wasip2::http::proxy::export!(Counter);

fn reply(out: ResponseOutparam, status: u16, text: &str) {
    let headers = Fields::from_list(&[("content-type".into(), b"text/plain".to_vec())])
        .expect("a valid header");
    let response = OutgoingResponse::new(headers);
    let _ = response.set_status_code(status);
    let body = response.body().expect("the body of a new response");
    ResponseOutparam::set(out, Ok(response));
    {
        let stream = body.write().expect("the stream of a new body");
        let _ = stream.blocking_write_and_flush(text.as_bytes());
    }
    let _ = OutgoingBody::finish(body, None);
}

fn count(name: &str, peek: bool) -> Result<i64, String> {
    let bucket = store::open("default").map_err(|e| format!("{e:?}"))?;
    if peek {
        let value = bucket.get(name).map_err(|e| format!("{e:?}"))?;
        return Ok(value
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0));
    }
    atomics::increment(&bucket, name, 1).map_err(|e| format!("{e:?}"))
}

impl wasip2::exports::http::incoming_handler::Guest for Counter {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_default();
        let (path, query) = path.split_once('?').unwrap_or((&path, ""));
        let name = path.rsplit('/').next().filter(|n| !n.is_empty()).unwrap_or("total");
        match count(name, query == "peek") {
            Ok(n) => reply(out, 200, &format!("{n}\n")),
            Err(e) => reply(out, 500, &format!("the store failed: {e}\n")),
        }
    }
}
