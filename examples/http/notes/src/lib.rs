//! Notes kept as files on the app's sealed mount (`/notes`): `PUT
//! /notes/NAME` stores the body, `GET /notes/NAME` returns it, `GET
//! /notes/` lists them. The files are entries of the sealed store: nothing
//! of them is on the host in the clear.

use std::io::Read;
use wasip2::http::types::{
    Fields, IncomingBody, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

struct Notes;

wasip2::http::proxy::export!(Notes);

fn reply(out: ResponseOutparam, status: u16, text: &[u8]) {
    let headers = Fields::from_list(&[("content-type".into(), b"text/plain".to_vec())])
        .expect("a valid header");
    let response = OutgoingResponse::new(headers);
    let _ = response.set_status_code(status);
    let body = response.body().expect("the body of a new response");
    ResponseOutparam::set(out, Ok(response));
    {
        let stream = body.write().expect("the stream of a new body");
        for chunk in text.chunks(4096) {
            let _ = stream.blocking_write_and_flush(chunk);
        }
    }
    let _ = OutgoingBody::finish(body, None);
}

fn body(request: &IncomingRequest) -> Vec<u8> {
    let mut data = Vec::new();
    if let Ok(body) = request.consume() {
        if let Ok(stream) = body.stream() {
            while let Ok(chunk) = stream.blocking_read(64 * 1024) {
                data.extend_from_slice(&chunk);
            }
        }
        IncomingBody::finish(body);
    }
    data
}

impl wasip2::exports::http::incoming_handler::Guest for Notes {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_default();
        let name = path.trim_start_matches("/notes").trim_start_matches('/');
        if name.contains('/') || name.starts_with('.') {
            return reply(out, 400, b"a note name is one path segment\n");
        }
        let file = format!("/notes/{name}");
        match (request.method(), name.is_empty()) {
            (Method::Get, true) => {
                let mut names: Vec<String> = std::fs::read_dir("/notes")
                    .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
                    .unwrap_or_default();
                names.sort();
                reply(out, 200, (names.join("\n") + "\n").as_bytes())
            }
            (Method::Get, false) => {
                let mut text = Vec::new();
                match std::fs::File::open(&file).and_then(|mut f| f.read_to_end(&mut text)) {
                    Ok(_) => reply(out, 200, &text),
                    Err(_) => reply(out, 404, b"no such note\n"),
                }
            }
            (Method::Put, false) => {
                let data = body(&request);
                match std::fs::write(&file, &data) {
                    Ok(()) => reply(out, 201, format!("stored {} bytes\n", data.len()).as_bytes()),
                    Err(e) => reply(out, 500, format!("cannot store the note: {e}\n").as_bytes()),
                }
            }
            _ => reply(out, 405, b"GET or PUT\n"),
        }
    }
}
