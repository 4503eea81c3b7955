//! How event types are declared: one macro gives each a struct of optional fields, a
//! flattened `extra` map, its `type` and its list of field names.
#![forbid(unsafe_code)]

/// A field name as written in the record: a raw identifier (`r#match`) without its `r#`.
pub const fn field_name(ident: &'static str) -> &'static str {
    match ident.as_bytes() {
        [b'r', b'#', rest @ ..] => match std::str::from_utf8(rest) {
            Ok(name) => name,
            Err(_) => ident,
        },
        _ => ident,
    }
}

/// Reads a field that may be `null`: absent is `None`, `null` is `Some(None)`, so that a
/// written `null` reads back as written.
pub(crate) fn present_or_null<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    serde::Deserialize::deserialize(d).map(Some)
}

/// Declares one event type: a struct of optional fields plus `extra`, and its [`EventBody`];
/// with `names in <module>`, also a module of its field names.
macro_rules! event_type {
    (
        $(#[$meta:meta])*
        pub struct $name:ident = $type_name:literal, names in $names:ident {
            $( $(#[$fmeta:meta])* $field:ident : $ty:ty ),* $(,)?
        }
    ) => {
        $crate::schema::event_type! {
            $(#[$meta])*
            pub struct $name = $type_name {
                $( $(#[$fmeta])* $field : $ty ),*
            }
        }

        #[doc = concat!("The field names of `", $type_name, "`, for the markers a cut value")]
        #[doc = " gets beside it (`<field>_truncated`, `<field>_b64`)."]
        #[allow(non_upper_case_globals)]
        pub mod $names {
            $(pub const $field: &str = $crate::schema::field_name(stringify!($field));)*
        }
    };
    (
        $(#[$meta:meta])*
        pub struct $name:ident = $type_name:literal {
            $( $(#[$fmeta:meta])* $field:ident : $ty:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
        pub struct $name {
            $(
                $(#[$fmeta])*
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub $field: Option<$ty>,
            )*
            /// Fields this version does not know, kept as written.
            #[serde(flatten)]
            pub extra: serde_json::Map<String, serde_json::Value>,
        }

        impl $crate::schema::EventBody for $name {
            const TYPE: &'static str = $type_name;
            const FIELDS: &'static [&'static str] =
                &[$($crate::schema::field_name(stringify!($field))),*];
        }
    };
}
pub(crate) use event_type;
