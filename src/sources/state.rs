//! States PostgreSQL reports as text (a walsender's `state`, a slot's
//! `wal_status`...) as enums, decoded once with the row.
//!
//! Each is declared with [`pg_state!`], which gives it, like
//! `crate::model::role::Role`, the list of its values in the order its
//! state set lists them (`NAMES`, for the family descriptors and the
//! renderers) and `as_str`. A value this build does not know (a newer
//! PostgreSQL may add one) is kept as `Other` with PostgreSQL's own word:
//! shown as PostgreSQL wrote it, 1 in no series of the state set, and
//! never a reason to refuse the whole collection.

/// Declares a state PostgreSQL reports as text: the enum, its `NAMES`,
/// `as_str`, and its decoding and encoding as that text.
macro_rules! pg_state {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this build does not know, as PostgreSQL wrote it.
            Other(String),
        }

        impl $name {
            /// The values PostgreSQL documents, in the order of the state set.
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            /// PostgreSQL's word for it.
            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$variant => $text, )+
                    $name::Other(text) => text,
                }
            }

            fn from_text(text: String) -> $name {
                match text.as_str() {
                    $( $text => $name::$variant, )+
                    _ => $name::Other(text),
                }
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<$name, D::Error> {
                String::deserialize(d).map($name::from_text)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub(crate) use pg_state;

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    pg_state! {
        /// A test state.
        pub enum Light {
            Green = "green",
            Red = "red",
        }
    }

    #[test]
    fn known_values_decode_to_variants_and_others_are_kept() {
        let decoded: Vec<Light> =
            serde_json::from_str(r#"["red", "green", "amber"]"#).expect("states");
        assert_eq!(
            decoded,
            [Light::Red, Light::Green, Light::Other("amber".into())]
        );
        assert_eq!(Light::NAMES, ["green", "red"]);
        assert_eq!(decoded[2].as_str(), "amber");
        assert_eq!(
            serde_json::to_string(&decoded).expect("encoded"),
            r#"["red","green","amber"]"#
        );
        // Each known name decodes to the variant that gives it back.
        for name in Light::NAMES {
            let light = Light::deserialize(serde_json::json!(name)).expect("a light");
            assert_eq!(light.as_str(), *name);
            assert!(!matches!(light, Light::Other(_)));
        }
    }
}
