//! AWS Certificate Manager resource types: the certificate of the ALB's HTTPS listener.

pub mod certificate;
