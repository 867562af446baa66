//! S3 where moto is looser than S3
//! (docs.aws.amazon.com/AmazonS3/latest/API/Welcome.html):
//! - [`cors`]: preflights answered and response headers given from each bucket's
//!   `CorsConfiguration`;
//! - [`presigned_urls`]: a presigned request without its signed headers, or past its expiry,
//!   is refused;
//! - [`no_such_key`]: a missing key is 404 only to callers who may list the bucket.

pub mod cors;
pub mod no_such_key;
pub mod presigned_urls;
