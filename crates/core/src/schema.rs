//! JSON Schemas of the types that serialise as strings (`slipway-deploy schema`): each is a
//! string with the pattern its parser enforces loosely (the parser stays the authority).

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

macro_rules! string_schema {
    ($type:ty, $name:literal, $description:literal, $pattern:literal) => {
        impl JsonSchema for $type {
            fn schema_name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({
                    "type": "string",
                    "description": $description,
                    "pattern": $pattern,
                })
            }
        }
    };
}

string_schema!(
    crate::Digest,
    "Digest",
    "A content digest `algorithm:hex`.",
    "^[a-z0-9]+([+._-][a-z0-9]+)*:[a-fA-F0-9]{32,}$"
);
string_schema!(
    crate::ImageRef,
    "ImageRef",
    "An OCI image reference, normalised (`registry/repository[:tag][@digest]`).",
    "^[^\\s]+$"
);
string_schema!(
    crate::ReleaseId,
    "ReleaseId",
    "`namespace/name` of the Deployment a release serves.",
    "^[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-.a-z0-9]*[a-z0-9])?$"
);
string_schema!(
    crate::Secret,
    "Secret",
    "A secret: always printed as `<redacted>`.",
    "^.*$"
);
