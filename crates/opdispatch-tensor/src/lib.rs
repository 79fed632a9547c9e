//! opdispatch-tensor (under construction)
