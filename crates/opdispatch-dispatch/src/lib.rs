//! opdispatch-dispatch (under construction)
