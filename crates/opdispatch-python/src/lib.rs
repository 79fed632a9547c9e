//! opdispatch-python (under construction)
