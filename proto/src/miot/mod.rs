//! MIoT specs: the model of a device's services, properties, actions and
//! events, and everything derived from it.
//!
//! A MIoT device describes itself with a spec instance document (see
//! `proto/specs/FORMAT.md`). This module:
//!
//! - parses type URNs ([`urn`]) and instance documents ([`spec`]), tolerating
//!   the quirks of real documents and reporting them as warnings;
//! - checks, parses, decodes and displays property values and checks action
//!   arguments ([`value`]);
//! - gives every property, action and event a stable name such as
//!   `light.brightness` or `switch-2.on`, and resolves names back to iids
//!   with suggestions for typos ([`names`]);
//! - bundles 24 real documents and the instances index ([`bundled`],
//!   [`instances`]) and keeps bundled and user specs by model ([`store`]).
//!
//! It does **not** talk to devices or the cloud, read files, or fetch specs:
//! callers hand in bytes and get back data or typed errors. Nothing here
//! panics on input.

pub mod bundled;
pub mod error;
pub mod instances;
pub mod names;
pub mod spec;
pub mod store;
pub mod urn;
pub mod value;

pub use error::{ItemKind, Location, Pos, SpecError, SpecWarning};
pub use instances::{Instance, InstanceStatus, Instances};
pub use names::{NameEntry, NameError, NameTable, ServiceName};
pub use spec::{Access, Action, Event, Format, Property, Service, Spec, ValueListItem, ValueRange};
pub use store::{SpecSource, SpecStore};
pub use urn::{Urn, UrnError, UrnKind};
pub use value::ValueError;
