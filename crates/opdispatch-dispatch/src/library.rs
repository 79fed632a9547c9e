//! `Library`: the registration front end (PyTorch's `torch::Library`), with its checks, its
//! error messages and RAII ownership of everything it registered.

use std::sync::Arc;

use opdispatch_keys::{get_runtime_dispatch_key_set, DispatchKey};
use opdispatch_schema::{
    parse_name, parse_name_parts, parse_schema_or_name, AliasAnalysisKind, FunctionSchema,
    OperatorName, OperatorNameParts, SchemaOrName,
};

use crate::dispatcher::{Dispatcher, RegistrationHandle};
use crate::error::{DispatchError, Result};
use crate::kernel::KernelFunction;

/// The three kinds of library block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LibraryKind {
    /// Defines a namespace's operators; one per namespace.
    Def,
    /// Implements operators of any namespace (or `_` for fallbacks).
    Impl,
    /// Adds definitions to a namespace; any number.
    Fragment,
}

impl LibraryKind {
    /// Parses "DEF" / "IMPL" / "FRAGMENT" ("could not parse <k>" otherwise).
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "DEF" => Ok(Self::Def),
            "IMPL" => Ok(Self::Impl),
            "FRAGMENT" => Ok(Self::Fragment),
            _ => Err(DispatchError::Runtime(format!("could not parse {s}"))),
        }
    }
    /// The macro name PyTorch prints in messages.
    pub fn macro_name(self) -> &'static str {
        match self {
            Self::Def => "TORCH_LIBRARY",
            Self::Impl => "TORCH_LIBRARY_IMPL",
            Self::Fragment => "TORCH_LIBRARY_FRAGMENT",
        }
    }
}

/// Parses an alias-analysis kind as the Python binding does ("" means FROM_SCHEMA).
pub fn parse_alias_analysis_kind(s: &str) -> Result<AliasAnalysisKind> {
    match s {
        "" | "FROM_SCHEMA" => Ok(AliasAnalysisKind::FromSchema),
        "CONSERVATIVE" => Ok(AliasAnalysisKind::Conservative),
        "PURE_FUNCTION" => Ok(AliasAnalysisKind::PureFunction),
        _ => Err(DispatchError::Runtime(format!("could not parse {s}"))),
    }
}

/// A kernel on its way to registration (PyTorch's `CppFunction`).
#[derive(Clone)]
pub struct CppFunction {
    pub(crate) kernel: KernelFunction,
    pub(crate) dispatch_key: Option<DispatchKey>,
    pub(crate) inferred_schema: Option<Arc<FunctionSchema>>,
    pub(crate) cpp_signature: Option<(std::any::TypeId, &'static str)>,
    pub(crate) debug: String,
}

impl CppFunction {
    /// Wraps any kernel function.
    pub fn new(kernel: KernelFunction) -> Self {
        Self {
            kernel,
            dispatch_key: None,
            inferred_schema: None,
            cpp_signature: None,
            debug: String::new(),
        }
    }
    /// A boxed kernel.
    pub fn boxed(k: impl crate::BoxedKernel) -> Self {
        Self::new(KernelFunction::from_boxed(k))
    }
    /// `CppFunction::makeFallthrough()`.
    pub fn fallthrough() -> Self {
        Self::new(KernelFunction::fallthrough())
    }
    /// `torch::dispatch(k, f)`: Undefined (CatchAll) means "no key".
    #[must_use]
    pub fn dispatch(mut self, k: DispatchKey) -> Self {
        self.dispatch_key = (k != DispatchKey::Undefined).then_some(k);
        self
    }
    /// `.debug(...)`: overrides the "registered at file:line" text.
    #[must_use]
    pub fn debug(mut self, d: impl Into<String>) -> Self {
        self.debug = d.into();
        self
    }
    /// Attaches a schema inferred from the kernel's signature.
    #[must_use]
    pub fn with_inferred_schema(mut self, s: FunctionSchema) -> Self {
        self.inferred_schema = Some(Arc::new(s));
        self
    }
    pub(crate) fn with_signature(mut self, id: std::any::TypeId, name: &'static str) -> Self {
        self.cpp_signature = Some((id, name));
        self
    }
}

/// A library block. Dropping it (or [`Library::reset`]) removes everything it registered.
pub struct Library {
    kind: LibraryKind,
    ns: Option<String>,
    dispatch_key: Option<DispatchKey>,
    file: String,
    line: u32,
    /// "registered at <file>:<line>", built once and shared by every registration.
    debug: Arc<str>,
    registrars: Vec<RegistrationHandle>,
}

impl std::fmt::Debug for Library {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Library({}, {}, {:?})",
            self.kind.macro_name(),
            self.ns.as_deref().unwrap_or("_"),
            self.dispatch_key
        )
    }
}

impl Library {
    /// Opens a library block. `ns == "_"` is the wildcard namespace (IMPL only).
    pub fn new(
        kind: LibraryKind,
        ns: &str,
        dispatch_key: Option<DispatchKey>,
        file: &str,
        line: u32,
    ) -> Result<Self> {
        let mut lib = Self {
            kind,
            ns: (ns != "_").then(|| ns.to_owned()),
            dispatch_key: dispatch_key.filter(|&k| k != DispatchKey::Undefined),
            file: file.to_owned(),
            line,
            debug: Arc::from(format!("registered at {file}:{line}")),
            registrars: Vec::new(),
        };
        // DEF claims the namespace first, as PyTorch does, so a second DEF reports the
        // duplicate namespace before anything else.
        if kind == LibraryKind::Def {
            if let Some(ns) = lib.ns.clone() {
                let h = Dispatcher::singleton()
                    .register_library(&ns, lib.debug_string().to_string())?;
                lib.registrars.push(h);
            }
        }
        if matches!(kind, LibraryKind::Def | LibraryKind::Fragment) {
            if lib.ns.is_none() {
                let m = kind.macro_name();
                return Err(DispatchError::Runtime(format!(
                    "{m}: cannot define {m} with the wildcard namespace _ (every {m} defines operators for a distinct namespace!) Did you mean to use TORCH_LIBRARY_IMPL instead?  {}",
                    lib.error_context()
                )));
            }
            if lib.dispatch_key.is_some() {
                return Err(DispatchError::Internal(format!(
                    "!dispatch_key_.has_value() INTERNAL ASSERT FAILED at \"{}\":{}, please report a bug to PyTorch. {}",
                    file!(),
                    line!(),
                    lib.error_context()
                )));
            }
        }
        Ok(lib)
    }

    pub fn kind(&self) -> LibraryKind {
        self.kind
    }
    /// The namespace ("_" for the wildcard).
    pub fn ns(&self) -> &str {
        self.ns.as_deref().unwrap_or("_")
    }
    pub fn dispatch_key(&self) -> Option<DispatchKey> {
        self.dispatch_key
    }

    fn debug_string(&self) -> Arc<str> {
        self.debug.clone()
    }

    fn debug_string_for(&self, explicit: &str) -> Arc<str> {
        if explicit.is_empty() {
            self.debug_string()
        } else {
            Arc::from(explicit)
        }
    }

    fn error_context(&self) -> String {
        format!(
            "(Error occurred while processing {} block at {}:{})",
            self.kind.macro_name(),
            self.file,
            self.line
        )
    }

    /// `def(schema)`: defines an operator. Returns its name.
    pub fn def(&mut self, schema: &str, alias: Option<AliasAnalysisKind>) -> Result<OperatorName> {
        self.def_with_tags(schema, alias, &[])
    }

    /// [`Self::def`] that gives the operator `tags` (`m.def(schema, tags)`).
    pub fn def_with_tags(
        &mut self,
        schema: &str,
        alias: Option<AliasAnalysisKind>,
        tags: &[crate::Tag],
    ) -> Result<OperatorName> {
        let mut s = match parse_schema_or_name(schema)? {
            SchemaOrName::Schema(s) => s,
            SchemaOrName::Name(_) => {
                return Err(DispatchError::Runtime(
                    "Tried to parse a function schema but only the operator name was given".into(),
                ))
            }
        };
        s.alias_kind = alias;
        self.def_schema_tagged(s, tags.to_vec())
    }

    /// `_def(schema)`: defines an already parsed schema.
    pub fn def_schema(&mut self, schema: FunctionSchema) -> Result<OperatorName> {
        self.def_schema_tagged(schema, Vec::new())
    }

    /// [`Self::def_schema`] with `tags` (a front end that parsed the schema already, to read
    /// the name as written, defines it without parsing it again).
    pub fn def_schema_with_tags(
        &mut self,
        schema: FunctionSchema,
        tags: &[crate::Tag],
    ) -> Result<OperatorName> {
        self.def_schema_tagged(schema, tags.to_vec())
    }

    fn def_schema_tagged(
        &mut self,
        mut schema: FunctionSchema,
        tags: Vec<crate::Tag>,
    ) -> Result<OperatorName> {
        self.check_def_allowed(&schema.name)?;
        let ns = self.ns.as_deref().unwrap_or_default();
        if !schema.name.set_namespace_if_not_set(ns) {
            let given = schema.name.namespace().unwrap_or_default().to_owned();
            if given != ns {
                return Err(DispatchError::Runtime(format!(
                    "Explicitly provided namespace ({given}) in schema string does not match namespace of enclosing {} block ({ns}).  Move this definition to the (unique) TORCH_LIBRARY block corresponding to this namespace (and consider deleting the namespace from your schema string.)  {}",
                    self.kind.macro_name(),
                    self.error_context()
                )));
            }
        }
        let name = schema.name.clone();
        let h = Dispatcher::singleton().register_def(schema, self.debug_string(), tags)?;
        self.registrars.push(h);
        Ok(name)
    }

    fn check_def_allowed(&self, name: &OperatorName) -> Result<()> {
        if !matches!(self.kind, LibraryKind::Def | LibraryKind::Fragment) {
            return Err(DispatchError::Runtime(format!(
                "def(\"{name}\"): Cannot define an operator inside of a {} block.  All def()s should be placed in the (unique) TORCH_LIBRARY block for their namespace.  {}",
                self.kind.macro_name(),
                self.error_context()
            )));
        }
        Ok(())
    }

    /// `def(name_or_schema, f)`: defines an operator and registers `f` for it. With only a
    /// name, the schema is the one inferred from `f` (alias analysis CONSERVATIVE).
    pub fn def_with(
        &mut self,
        name_or_schema: &str,
        alias: Option<AliasAnalysisKind>,
        f: CppFunction,
    ) -> Result<OperatorName> {
        let schema = match parse_schema_or_name(name_or_schema)? {
            SchemaOrName::Schema(mut s) => {
                s.alias_kind = alias;
                s
            }
            SchemaOrName::Name(n) => match &f.inferred_schema {
                Some(inf) => {
                    let mut s = FunctionSchema::clone(inf);
                    s.name = n;
                    s.alias_kind = Some(AliasAnalysisKind::Conservative);
                    s
                }
                None => {
                    return Err(DispatchError::Runtime(format!(
                        "def(\"{n}\"): Full schema string was not specified, and we couldn't infer schema either.  Please explicitly provide a schema string.  {}",
                        self.error_context()
                    )))
                }
            },
        };
        let name = self.def_schema(schema)?;
        let h = self.impl_resolved(name.parts(), name_or_schema, f)?;
        self.registrars.push(h);
        Ok(name)
    }

    /// `impl(name, f)`: registers a kernel for an operator of this (or an explicit) namespace.
    pub fn impl_(&mut self, name: &str, f: CppFunction) -> Result<()> {
        // The common names are taken apart in place; the rest go through the parser.
        let parsed;
        let mut parts = match parse_name_parts(name) {
            Some(p) => p,
            None => {
                parsed = parse_name(name)?;
                parsed.parts()
            }
        };
        if let Some(ns) = self.ns.as_deref() {
            let (with_ns, applied) = parts.with_namespace_if_not_set(ns);
            parts = with_ns;
            if !applied {
                let given = parts.namespace.unwrap_or_default();
                if given != ns {
                    return Err(DispatchError::Runtime(format!(
                        "impl(\"{name}\", ...): Explicitly provided namespace ({given}) in operator name does not match namespace of enclosing {} block ({ns}).  Move this definition to the {} block corresponding to this namespace (and consider deleting the namespace from your schema string.)  {}",
                        self.kind.macro_name(),
                        self.kind.macro_name(),
                        self.error_context()
                    )));
                }
            }
        }
        let h = self.impl_resolved(parts, name, f)?;
        self.registrars.push(h);
        Ok(())
    }

    /// `written` is the name as the caller spelled it (PyTorch's messages quote it).
    fn impl_resolved(
        &self,
        name: OperatorNameParts<'_>,
        written: &str,
        f: CppFunction,
    ) -> Result<RegistrationHandle> {
        if let (Some(fk), Some(lk)) = (f.dispatch_key, self.dispatch_key) {
            if fk != lk {
                return Err(DispatchError::Runtime(format!(
                    "impl(\"{written}\", ...): Explicitly provided dispatch key ({}) is inconsistent with the dispatch key of the enclosing {} block ({}).  Please declare a separate {} block for this dispatch key and move your impl() there.  {}",
                    fk.name(),
                    self.kind.macro_name(),
                    lk.name(),
                    self.kind.macro_name(),
                    self.error_context()
                )));
            }
        }
        let key = f.dispatch_key.or(self.dispatch_key);
        let debug = self.debug_string_for(&f.debug);
        Dispatcher::singleton().register_impl(
            name,
            key,
            f.kernel,
            f.cpp_signature,
            f.inferred_schema,
            debug,
        )
    }

    /// `fallback(f)`: a global fallback; needs an IMPL block on the `_` namespace. Alias keys
    /// expand to one fallback per runtime key.
    pub fn fallback(&mut self, f: CppFunction) -> Result<()> {
        if self.kind != LibraryKind::Impl {
            return Err(DispatchError::Runtime(format!(
                "fallback(...): Cannot define an operator inside of a {} block.  Did you mean to call this function inside a TORCH_LIBRARY_IMPL block?  {}",
                self.kind.macro_name(),
                self.error_context()
            )));
        }
        let Some(key) = f.dispatch_key.or(self.dispatch_key) else {
            return Err(DispatchError::Runtime(format!(
                "fallback(...): a fallback needs a dispatch key, from the block or from the kernel.  {}",
                self.error_context()
            )));
        };
        if let Some(ns) = &self.ns {
            return Err(DispatchError::Runtime(format!(
                "fallback(...): Fallback functions which apply to only a single namespace (you specified {ns}) are not supported.  If you intended to apply this fallback function globally, please define a separate block:\n\n    TORCH_LIBRARY_IMPL(_, {}, m) {{ m.fallback(...); }}\n\n{}",
                key.name(),
                self.error_context()
            )));
        }
        let debug = self.debug_string_for(&f.debug);
        // As in PyTorch, runtime keys registered before a failing one stay registered (owned by
        // this library, so resetting it removes them).
        for rk in get_runtime_dispatch_key_set(key) {
            let h = Dispatcher::singleton().register_fallback(
                rk,
                f.kernel.clone(),
                debug.to_string(),
            )?;
            self.registrars.push(h);
        }
        Ok(())
    }

    /// Deregisters everything this library registered (it stays usable).
    pub fn reset(&mut self) {
        drop_in_reverse(self.take_registrations());
    }

    /// Moves the registrations out (they are undone when the returned handles drop), so a
    /// front end can release its own locks before undoing them.
    pub fn take_registrations(&mut self) -> Vec<RegistrationHandle> {
        std::mem::take(&mut self.registrars)
    }

    /// Number of live registrations.
    pub fn num_registrations(&self) -> usize {
        self.registrars.len()
    }
}

/// Undoes registrations newest first, so each handle sees the state it created (operators
/// that end up with no registrations are removed in one step).
pub fn drop_in_reverse(handles: Vec<RegistrationHandle>) {
    crate::dispatcher::deregister_all(handles);
}

impl Drop for Library {
    fn drop(&mut self) {
        self.reset();
    }
}
