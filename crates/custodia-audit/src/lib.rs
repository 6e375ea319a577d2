//! The audit log's tree: RFC 6962 (Certificate Transparency) Merkle hashing with domain
//! separation — leaf `H(0x00 ‖ event)`, node `H(0x01 ‖ left ‖ right)` — over SHA-256
//! (`intl`) or SM3 (`gm`), with inclusion and consistency proofs and their verifiers.
//!
//! This is the foundation of the audit issue: events are leaves in sequence order; signed
//! tree heads, the sequencer, storage and the `custodia audit` commands build on it.
#![forbid(unsafe_code)]

pub mod event;
pub mod index;
pub mod merkle;
pub mod sth;
pub mod verify;
