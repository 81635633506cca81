//! The smallest `warden serve` app: answers every request with a greeting.

use wasip2::http::types::{Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam};

struct Hello;

wasip2::http::proxy::export!(Hello);

impl wasip2::exports::http::incoming_handler::Guest for Hello {
    fn handle(_request: IncomingRequest, out: ResponseOutparam) {
        let headers = Fields::from_list(&[("content-type".into(), b"text/plain".to_vec())])
            .expect("a valid header");
        let response = OutgoingResponse::new(headers);
        let body = response.body().expect("the body of a new response");
        ResponseOutparam::set(out, Ok(response));
        {
            let stream = body.write().expect("the stream of a new body");
            let _ = stream.blocking_write_and_flush(b"Hello from warden\n");
        }
        let _ = OutgoingBody::finish(body, None);
    }
}
