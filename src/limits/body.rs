//! A deadline on request bodies. actix-web times out a client that is slow
//! to send its headers, but not one that sends headers promising a body and
//! then a byte now and then: such connections would stay open for good, and
//! enough of them exhaust the process's file descriptors. Every body must
//! arrive whole within the deadline, counted from the end of its headers;
//! after it the handler's read fails and the answer is a 408 that closes the
//! connection. A body the handler left unread also closes the connection, so
//! the server never waits for the rest.

use std::cell::Cell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::ConnectionType;
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{HttpMessage, ResponseError};
use bytes::Bytes;
use futures_util::Stream;
use tokio::time::Sleep;

use crate::error::ApiError;

/// Where a request's body stands once its handler is done.
#[derive(Default)]
struct Progress {
    timed_out: Cell<bool>,
    finished: Cell<bool>,
}

/// The request's payload, failing once `deadline` passes.
struct Deadline {
    inner: Payload,
    deadline: Pin<Box<Sleep>>,
    progress: Rc<Progress>,
}

impl Stream for Deadline {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Poll::Ready(item) = Pin::new(&mut self.inner).poll_next(cx) {
            if item.is_none() {
                self.progress.finished.set(true);
            }
            return Poll::Ready(item);
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.progress.timed_out.set(true);
                Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the request body did not arrive in time",
                )))))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Whether the request announces a body at all.
fn has_body(req: &ServiceRequest) -> bool {
    let headers = req.headers();
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|length| length != "0")
}

/// How long a request's body may take (`CLEARANCE_BODY_TIMEOUT_SECS`), as
/// app data for [`deadline`].
#[derive(Debug, Clone, Copy)]
pub struct BodyTimeout(pub Duration);

/// App middleware: the body of every request must arrive within the
/// app's [`BodyTimeout`].
pub async fn deadline(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let limit = match req.app_data::<BodyTimeout>() {
        Some(BodyTimeout(limit)) if has_body(&req) => *limit,
        _ => return Ok(next.call(req).await?.map_into_left_body()),
    };
    let progress = Rc::new(Progress::default());
    let payload = Deadline {
        inner: req.take_payload(),
        deadline: Box::pin(tokio::time::sleep(limit)),
        progress: progress.clone(),
    };
    let payload: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> = Box::pin(payload);
    req.set_payload(Payload::from(payload));
    let mut response = next.call(req).await?;
    if progress.timed_out.get() {
        let (req, _) = response.into_parts();
        let mut timeout = ApiError::RequestTimeout.error_response();
        timeout
            .head_mut()
            .set_connection_type(ConnectionType::Close);
        return Ok(ServiceResponse::new(req, timeout).map_into_right_body());
    }
    if !progress.finished.get() {
        response
            .response_mut()
            .head_mut()
            .set_connection_type(ConnectionType::Close);
    }
    Ok(response.map_into_left_body())
}
