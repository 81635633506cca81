//! Logs each request through `wasi:logging` (streamed to warden's log,
//! tagged with the app and level) and on stdout, then answers it.

use wasip2::http::types::{Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam};

wit_bindgen::generate!({
    path: "../../../crates/serve/wit/logging",
    world: "wasi:logging/imports@0.1.0-draft",
});

use wasi::logging::logging::{log, Level};

struct Logger;

wasip2::http::proxy::export!(Logger);

impl wasip2::exports::http::incoming_handler::Guest for Logger {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_default();
        log(Level::Info, "request", &format!("{:?} {path}", request.method()));
        if path.contains("fail") {
            log(Level::Error, "request", "asked to fail");
        }
        println!("handled {path}");
        let headers = Fields::from_list(&[("content-type".into(), b"text/plain".to_vec())])
            .expect("a valid header");
        let response = OutgoingResponse::new(headers);
        let body = response.body().expect("the body of a new response");
        ResponseOutparam::set(out, Ok(response));
        {
            let stream = body.write().expect("the stream of a new body");
            let _ = stream.blocking_write_and_flush(b"logged\n");
        }
        let _ = OutgoingBody::finish(body, None);
    }
}
