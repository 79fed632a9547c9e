//! opdispatch-schema (under construction)
