//! opdispatch-keys (under construction)
