"""The custom-op layer (PyTorch's ``torch/_library``): ``infer_schema``, ``custom_op`` /
``CustomOpDef``, fake impls and ``opcheck``; exposed through ``opdispatch.library``."""
