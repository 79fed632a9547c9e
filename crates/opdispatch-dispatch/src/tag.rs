//! Operator tags: PyTorch's `at::Tag` (`aten/src/ATen/native/tags.yaml`), which a def may attach
//! to an operator and `OpOverload.tags` reports. Values are PyTorch 2.15's (alphabetical).

/// Declares [`Tag`] and its names once, in PyTorch's order.
macro_rules! tags {
    ($($variant:ident => $name:literal,)*) => {
        /// An operator tag.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Tag {
            $($variant,)*
        }

        impl Tag {
            /// Every tag, by value.
            pub const ALL: &'static [Tag] = &[$(Tag::$variant,)*];

            /// PyTorch's name (`torch.Tag.<name>`).
            pub const fn name(self) -> &'static str {
                match self {
                    $(Tag::$variant => $name,)*
                }
            }
        }
    };
}

tags! {
    Core => "core",
    CudagraphUnsafe => "cudagraph_unsafe",
    DataDependentOutput => "data_dependent_output",
    DynamicOutputShape => "dynamic_output_shape",
    FlexibleLayout => "flexible_layout",
    Generated => "generated",
    Inplace => "inplace",
    InplaceView => "inplace_view",
    MaybeAliasingOrMutating => "maybe_aliasing_or_mutating",
    NeedsContiguousStrides => "needs_contiguous_strides",
    NeedsExactStrides => "needs_exact_strides",
    NeedsFixedStrideOrder => "needs_fixed_stride_order",
    NondeterministicBitwise => "nondeterministic_bitwise",
    NondeterministicSeeded => "nondeterministic_seeded",
    Out => "out",
    OutVariant => "out_variant",
    Pointwise => "pointwise",
    Pt2CompliantTag => "pt2_compliant_tag",
    Reduction => "reduction",
    ViewCopy => "view_copy",
}

impl Tag {
    /// The tag's value (`int(torch.Tag.<name>)`).
    pub fn value(self) -> usize {
        self as usize
    }

    /// The tag with value `v`.
    pub fn from_value(v: usize) -> Option<Tag> {
        Self::ALL.get(v).copied()
    }

    /// The tag named `name`.
    pub fn parse(name: &str) -> Option<Tag> {
        Self::ALL.iter().copied().find(|t| t.name() == name)
    }
}

impl std::fmt::Display for Tag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::Tag;

    #[test]
    fn values_names_and_order_match_pytorch() {
        assert_eq!(Tag::ALL.len(), 20);
        for (i, t) in Tag::ALL.iter().enumerate() {
            assert_eq!(t.value(), i);
            assert_eq!(Tag::from_value(i), Some(*t));
            assert_eq!(Tag::parse(t.name()), Some(*t));
        }
        // Alphabetical, as PyTorch numbers them.
        assert!(Tag::ALL.windows(2).all(|w| w[0].name() < w[1].name()));
        assert_eq!(Tag::Pointwise.value(), 16);
        assert_eq!(Tag::Pt2CompliantTag.name(), "pt2_compliant_tag");
        assert_eq!(Tag::from_value(20), None);
        assert_eq!(Tag::parse("pointWise"), None);
    }
}
