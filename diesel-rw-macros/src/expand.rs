//! Code generation: the checks on the annotated item, the expansion, and the error output.
//!
//! A function passes [`check`] and becomes [`gen_function`]'s expansion, or fails it and is
//! emitted by [`gen_error`] as written plus one `compile_error!` at the offending span. The
//! error output binds the connection name to that `compile_error!`, which type-checks as an error
//! that silences every use of it, so the body's uses of `conn` add nothing to the one error.
//!
//! Generated code names only `::diesel_rw::__private::...` paths. The hidden guard has a
//! mixed-site span (user code cannot name it); `conn` has the call-site span (user code uses it).

use proc_macro2::{Span, TokenStream};
use quote::{quote, ToTokens};
use syn::parse::{Parse, ParseStream, Parser};
use syn::visit::{self, Visit};
use syn::{
    Attribute, Block, Expr, ExprAsync, ExprCall, ExprLit, FnArg, GenericArgument, Ident, Item, Lit,
    Local, Pat, PathArguments, ReturnType, Signature, Stmt, TraitItemFn, Type, TypeParamBound,
    Visibility,
};

use crate::args::Args;

/// Which attribute: the route it asks for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `#[read_only]`: a read-only connection, reading from a replica.
    ReadOnly,
    /// `#[master]`: a connection pinned to the primary.
    Master,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::ReadOnly => "read_only",
            Kind::Master => "master",
        }
    }

    fn role(self) -> TokenStream {
        match self {
            Kind::ReadOnly => quote!(::diesel_rw::__private::Role::Replica),
            Kind::Master => quote!(::diesel_rw::__private::Role::Primary),
        }
    }
}

/// Expands `#[read_only]` or `#[master]` (per `kind`) with `args` on `item`.
pub(crate) fn attribute(kind: Kind, args: Args, item: TokenStream) -> TokenStream {
    let func = match syn::parse2::<FnItem>(item.clone()) {
        Ok(func) => func,
        Err(_) => return not_a_function(kind, item),
    };
    let shape = Shape::of(&func);
    match check(kind, &args, &func, &shape) {
        Ok(source) => match shape {
            Shape::Sync => gen_function(kind, &args, &func, source),
            Shape::AsyncFn => gen_async_function(kind, &args, &func, source),
            Shape::AsyncTrait(boxed) => gen_async_trait(kind, &args, &func, source, boxed),
        },
        Err(error) => gen_error(&args, &func, error),
    }
}

/// How the function runs, which decides how it gets its connection.
enum Shape {
    /// A plain `fn`: routed through `Router`.
    Sync,
    /// An `async fn`: routed through `AsyncRouter`, with `.await`.
    AsyncFn,
    /// An `async fn` that `#[async_trait]` has rewritten already (it expands the `impl` block
    /// first, so this attribute sees its output): a `fn` returning
    /// `Pin<Box<dyn Future<Output = T> + ...>>` whose body is `Box::pin(async move { ... })`.
    /// Routed as an `async fn` returning `T`, inside that `async move` block.
    AsyncTrait(Box<BoxedFuture>),
}

impl Shape {
    fn of(func: &FnItem) -> Shape {
        if func.sig.asyncness.is_some() {
            Shape::AsyncFn
        } else if let Some(boxed) = BoxedFuture::parse(func) {
            Shape::AsyncTrait(Box::new(boxed))
        } else {
            Shape::Sync
        }
    }

    /// The trait the route source must implement, and the pool that implements it.
    fn router(&self) -> (&'static str, &'static str) {
        match self {
            Shape::Sync => ("diesel_rw::Router", "RwPool"),
            Shape::AsyncFn | Shape::AsyncTrait(_) => ("diesel_rw::AsyncRouter", "AsyncRwPool"),
        }
    }
}

/// The parts of an `#[async_trait]` method's body.
///
/// async_trait (0.1) writes `Box::pin(async move { <prologue> let __ret: T = { <body> }; __ret })`,
/// where the prologue moves the arguments into the block and binds `self` to `__self`. The
/// routing goes around `<body>`, after the prologue: there `self` is `__self`. If the block does
/// not have that shape (another version, or a hand-written boxed future), the routing goes at
/// the start of the whole `async move` block instead, where `self` is still `self`.
struct BoxedFuture {
    /// The `Output` of the returned future: the return type of the `async fn` as written.
    output: Type,
    /// The body: `Box::pin(async move { ... })`.
    call: ExprCall,
    /// Where in the `async move` block the body is: the index of `let __ret: T = { ... };`.
    body_at: Option<usize>,
    /// What `self` is called where the routing goes: `__self` after async_trait's prologue.
    receiver: Option<Ident>,
}

impl BoxedFuture {
    fn parse(func: &FnItem) -> Option<BoxedFuture> {
        let ReturnType::Type(_, ty) = &func.sig.output else {
            return None;
        };
        let output = future_output(ty)?;
        let mut stmts = Block::parse_within.parse2(func.body.clone()).ok()?;
        if stmts.len() != 1 {
            return None;
        }
        let Stmt::Expr(Expr::Call(call), None) = stmts.remove(0) else {
            return None;
        };
        let Expr::Path(path) = &*call.func else {
            return None;
        };
        if path.path.segments.last()?.ident != "pin" || call.args.len() != 1 {
            return None;
        }
        let Expr::Async(block) = &call.args[0] else {
            return None;
        };
        block.capture?;
        let stmts = &block.block.stmts;
        let body_at = stmts.iter().position(|stmt| {
            matches!(stmt, Stmt::Local(local)
                if local_name(local).is_some_and(|name| name == "__ret")
                    && matches!(local.init.as_ref().map(|init| &*init.expr), Some(Expr::Block(_))))
        });
        let receiver = body_at.and_then(|at| {
            stmts[..at].iter().find_map(|stmt| match stmt {
                Stmt::Local(local) => local_name(local).filter(|name| *name == "__self").cloned(),
                _ => None,
            })
        });
        Some(BoxedFuture {
            output,
            call,
            body_at,
            receiver,
        })
    }

    fn async_block(&mut self) -> &mut ExprAsync {
        match &mut self.call.args[0] {
            Expr::Async(block) => block,
            _ => unreachable!("checked by `parse`"),
        }
    }

    /// The tokens the routing goes around: async_trait's `{ <body> }`, or the whole block.
    fn body(&self) -> TokenStream {
        let Expr::Async(block) = &self.call.args[0] else {
            unreachable!("checked by `parse`")
        };
        match self.body_at.map(|at| &block.block.stmts[at]) {
            Some(Stmt::Local(local)) => {
                let init = local.init.as_ref().expect("checked by `parse`");
                let Expr::Block(body) = &*init.expr else {
                    unreachable!("checked by `parse`")
                };
                let stmts = &body.block.stmts;
                quote!(#(#stmts)*)
            }
            _ => {
                let stmts = &block.block.stmts;
                quote!(#(#stmts)*)
            }
        }
    }

    /// The body with `routed` (statements that end in the body's value) in place of `{ <body> }`.
    fn replace_body(mut self, routed: TokenStream) -> ExprCall {
        let body_at = self.body_at;
        let block = &mut self.async_block().block;
        match body_at {
            Some(at) => {
                let Stmt::Local(local) = &mut block.stmts[at] else {
                    unreachable!("checked by `parse`")
                };
                let init = local.init.as_mut().expect("checked by `parse`");
                *init.expr = syn::parse_quote!({ #routed });
            }
            None => block.stmts = syn::parse_quote!(#routed),
        }
        self.call
    }
}

/// The name a `let` binds, if it binds a plain name (`let x`, `let mut x: T`).
fn local_name(local: &Local) -> Option<&Ident> {
    let pat = match &local.pat {
        Pat::Type(typed) => &*typed.pat,
        pat => pat,
    };
    match pat {
        Pat::Ident(ident) if ident.subpat.is_none() => Some(&ident.ident),
        _ => None,
    }
}

/// `T` of `Pin<Box<dyn Future<Output = T> + ...>>` (any paths to those names).
fn future_output(ty: &Type) -> Option<Type> {
    fn only_type_arg(ty: &Type, name: &str) -> Option<Type> {
        let Type::Path(path) = peel(ty) else {
            return None;
        };
        let last = path.path.segments.last()?;
        if last.ident != name {
            return None;
        }
        let PathArguments::AngleBracketed(args) = &last.arguments else {
            return None;
        };
        match args.args.iter().collect::<Vec<_>>()[..] {
            [GenericArgument::Type(inner)] => Some(inner.clone()),
            _ => None,
        }
    }
    let boxed = only_type_arg(ty, "Pin")?;
    let Type::TraitObject(object) = peel(&only_type_arg(&boxed, "Box")?).clone() else {
        return None;
    };
    object.bounds.iter().find_map(|bound| {
        let TypeParamBound::Trait(bound) = bound else {
            return None;
        };
        let last = bound.path.segments.last()?;
        if last.ident != "Future" {
            return None;
        }
        let PathArguments::AngleBracketed(args) = &last.arguments else {
            return None;
        };
        args.args.iter().find_map(|arg| match arg {
            GenericArgument::AssocType(assoc) if assoc.ident == "Output" => Some(assoc.ty.clone()),
            _ => None,
        })
    })
}

/// A function with its body kept as tokens, so that a body that does not parse (a syntax error
/// of the user's) still gets the expansion, and rustc reports that syntax error alone.
struct FnItem {
    outer_attrs: Vec<Attribute>,
    inner_attrs: Vec<Attribute>,
    vis: Visibility,
    sig: Signature,
    body: TokenStream,
}

impl Parse for FnItem {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let outer_attrs = input.call(Attribute::parse_outer)?;
        let vis = input.parse()?;
        let sig = input.parse()?;
        let content;
        syn::braced!(content in input);
        let inner_attrs = content.call(Attribute::parse_inner)?;
        let body = content.parse()?;
        Ok(FnItem {
            outer_attrs,
            inner_attrs,
            vis,
            sig,
            body,
        })
    }
}

/// Checks the function and its arguments; gives the route source expression.
fn check(kind: Kind, args: &Args, func: &FnItem, shape: &Shape) -> syn::Result<TokenStream> {
    let name = kind.name();
    if let Some(error) = &args.error {
        return Err(error.clone());
    }
    if let Some(attr) = func
        .outer_attrs
        .iter()
        .find(|a| routing_attribute(a).is_some())
    {
        let message = if routing_attribute(attr) == Some(name) {
            format!("`#[{name}]` is given twice: give it once, with all its options")
        } else {
            "a function is either `#[read_only]` (a replica) or `#[master]` (the primary), \
             not both: keep the one it needs"
                .to_owned()
        };
        return Err(syn::Error::new_spanned(attr, message));
    }
    if let Some(constness) = &func.sig.constness {
        return Err(syn::Error::new(
            constness.span,
            format!(
                "`#[{name}]` cannot be used on a `const fn`: it gets a connection at run time; \
                 remove `const`"
            ),
        ));
    }
    let source = route_source(kind, args, &func.sig, shape.router())?;
    let output = match shape {
        // async_trait's `()` for a function that returns nothing has no span of the user's:
        // the error goes to the function's name, as for a plain `fn`.
        Shape::AsyncTrait(boxed) => match peel(&boxed.output) {
            Type::Tuple(t) if t.elems.is_empty() => ReturnType::Default,
            _ => ReturnType::Type(Default::default(), Box::new(boxed.output.clone())),
        },
        Shape::Sync | Shape::AsyncFn => func.sig.output.clone(),
    };
    if let Some(error) = returns_nothing(kind, args, &func.sig.ident, &output) {
        return Err(error);
    }
    if kind == Kind::ReadOnly {
        // A body that does not parse is left to rustc, which reports its syntax error.
        if let Ok(stmts) = Block::parse_within.parse2(func.body.clone()) {
            let mut writes = WriteCalls::default();
            stmts.iter().for_each(|stmt| writes.visit_stmt(stmt));
            if let Some(error) = writes.found {
                return Err(error);
            }
        }
    }
    Ok(source)
}

/// `Some("read_only")` for `#[read_only]` or `#[diesel_rw::read_only]`, and so on.
fn routing_attribute(attr: &Attribute) -> Option<&'static str> {
    let last = &attr.path().segments.last()?.ident;
    [Kind::ReadOnly, Kind::Master]
        .into_iter()
        .map(Kind::name)
        .find(|name| last == name)
}

/// Where the route comes from: `pool = <expr>` as written; else `self`; else the first
/// argument. A `&mut` source is reborrowed (`&mut *db`), so it is not moved; any other source is
/// used as written (a `&RwPool` is `Copy`; a generic `R: Router` is moved).
fn route_source(
    kind: Kind,
    args: &Args,
    sig: &Signature,
    (router, pool): (&str, &str),
) -> syn::Result<TokenStream> {
    let name = kind.name();
    if let Some(pool) = &args.pool {
        return Ok(pool.to_token_stream());
    }
    match sig.inputs.first() {
        Some(FnArg::Receiver(receiver)) => Ok(reborrow_mut(&receiver.ty, &receiver.self_token)),
        Some(FnArg::Typed(arg)) => match &*arg.pat {
            Pat::Ident(pat) if pat.subpat.is_none() => Ok(reborrow_mut(&arg.ty, &pat.ident)),
            pat => Err(syn::Error::new_spanned(
                pat,
                format!(
                    "`#[{name}]` routes from the first argument, which needs a plain name \
                     (like `db`) to be used; or give the route source as `#[{name}(pool = <expr>)]`"
                ),
            )),
        },
        None => Err(syn::Error::new(
            sig.paren_token.span.join(),
            format!(
                "`#[{name}]` needs a route source, and this function has no arguments: take a \
                 first argument that implements `{router}` (like `db: &{pool}<PgConnection>` \
                 or the `conn` of another annotated function), or give `#[{name}(pool = <expr>)]`"
            ),
        )),
    }
}

fn reborrow_mut(ty: &Type, name: &impl ToTokens) -> TokenStream {
    match peel(ty) {
        Type::Reference(r) if r.mutability.is_some() => quote!(&mut *#name),
        _ => name.to_token_stream(),
    }
}

fn peel(ty: &Type) -> &Type {
    match ty {
        Type::Paren(t) => peel(&t.elem),
        Type::Group(t) => peel(&t.elem),
        other => other,
    }
}

/// An error if the function returns nothing: it must return a `Result` for the route's error
/// (and, with `transaction`, for the commit or rollback).
fn returns_nothing(
    kind: Kind,
    args: &Args,
    name: &Ident,
    output: &ReturnType,
) -> Option<syn::Error> {
    let unit = match output {
        ReturnType::Default => name.to_token_stream(),
        ReturnType::Type(_, ty) => match peel(ty) {
            Type::Tuple(t) if t.elems.is_empty() => t.to_token_stream(),
            _ => return None,
        },
    };
    let name = kind.name();
    Some(match &args.transaction {
        Some(transaction) => syn::Error::new(
            transaction.span,
            "`transaction` needs the function to return a `Result`: the transaction commits on \
             `Ok` and rolls back on `Err`; return `QueryResult<T>`, or a `Result` whose error type \
             implements `From<diesel_rw::Error>` and `From<diesel::result::Error>`",
        ),
        None => syn::Error::new_spanned(
            unit,
            format!(
                "`#[{name}]` needs the function to return a `Result`, as getting a connection can \
                 fail: return `QueryResult<T>`, or a `Result` whose error type implements \
                 `From<diesel_rw::Error>`"
            ),
        ),
    })
}

/// Finds, in a `#[read_only]` body, the first call that writes: a diesel write function by the
/// last segment of its path, or `sql_query`/`sql` with a string literal that writes. Nested
/// items are other functions and are not looked into; neither are macro invocations.
#[derive(Default)]
struct WriteCalls {
    found: Option<syn::Error>,
}

impl<'ast> Visit<'ast> for WriteCalls {
    fn visit_item(&mut self, _: &'ast Item) {}

    fn visit_expr_call(&mut self, call: &'ast ExprCall) {
        if self.found.is_none() {
            self.found = write_call(call);
        }
        if self.found.is_none() {
            visit::visit_expr_call(self, call);
        }
    }
}

/// Diesel's functions that build a write statement.
const WRITE_FUNCTIONS: &[&str] = &[
    "insert_into",
    "insert_or_ignore_into",
    "replace_into",
    "update",
    "delete",
];

fn write_call(call: &ExprCall) -> Option<syn::Error> {
    let Expr::Path(path) = &*call.func else {
        return None;
    };
    let function = path.path.segments.last()?.ident.to_string();
    if WRITE_FUNCTIONS.contains(&function.as_str()) {
        return Some(syn::Error::new_spanned(
            call,
            format!(
                "`{function}` writes, and this function is `#[read_only]`: writes go to the \
                 primary, so make the function `#[master]`"
            ),
        ));
    }
    if function != "sql_query" && function != "sql" {
        return None;
    }
    let Some(Expr::Lit(ExprLit {
        lit: Lit::Str(sql), ..
    })) = call.args.first()
    else {
        return None;
    };
    let message = match (classify(&sql.value()), function.as_str()) {
        (Sql::Write(what), _) => format!(
            "this `{function}` runs `{what}`, a write, and this function is `#[read_only]`: \
             writes go to the primary, so make the function `#[master]`"
        ),
        // `sql` is mostly an expression fragment (`count(*)`): only a plain write counts there.
        (Sql::Unknown(what), "sql_query") => format!(
            "this `sql_query` runs `{what}`, which `#[read_only]` does not recognise as a read \
             (SELECT, WITH, SHOW, EXPLAIN, VALUES) and so counts as a write, as it would at run \
             time: make the function `#[master]`"
        ),
        _ => return None,
    };
    Some(syn::Error::new_spanned(call, message))
}

/// What the compile-time check makes of a SQL literal.
#[derive(Debug, PartialEq, Eq)]
enum Sql {
    Read,
    /// A write; the keywords that make it one.
    Write(String),
    /// Neither a known read nor a known write; its first keyword.
    Unknown(String),
}

/// Statements that read, by their first keyword...
const READ_FIRST: &[&str] = &["SELECT", "WITH", "SHOW", "EXPLAIN", "VALUES"];
/// ...unless one of these keywords appears in them (`WITH ... DELETE`, `SELECT ... FOR UPDATE`).
const DML: &[&str] = &["INSERT", "UPDATE", "DELETE", "MERGE"];
/// Statements that write, by their first keyword.
const WRITE_FIRST: &[&str] = &[
    "INSERT", "UPDATE", "DELETE", "REPLACE", "MERGE", "UPSERT", "CREATE", "ALTER", "DROP",
    "TRUNCATE", "RENAME", "GRANT", "REVOKE",
];

/// A deliberately small classification by keywords (comments and quoted text skipped): the first
/// keyword SELECT, WITH, SHOW, EXPLAIN or VALUES is a read unless INSERT, UPDATE, DELETE or MERGE
/// appears later; a known write keyword first is a write; anything else is unknown. The run-time
/// check of the read-only connection is the complete one.
fn classify(sql: &str) -> Sql {
    let words = keywords(sql);
    let Some(first) = words.first() else {
        return Sql::Read;
    };
    if READ_FIRST.contains(&first.as_str()) {
        match words[1..].iter().find(|w| DML.contains(&w.as_str())) {
            Some(dml) => Sql::Write(format!("{first} ... {dml}")),
            None => Sql::Read,
        }
    } else if WRITE_FIRST.contains(&first.as_str()) {
        Sql::Write(format!("{first} ..."))
    } else {
        Sql::Unknown(format!("{first} ..."))
    }
}

/// The words of `sql`, upper-cased, outside comments and quotes.
fn keywords(sql: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '-' if chars.peek() == Some(&'-') => {
                chars.by_ref().find(|&c| c == '\n');
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut prev = ' ';
                chars
                    .by_ref()
                    .find(|&c| std::mem::replace(&mut prev, c) == '*' && c == '/');
            }
            '\'' | '"' | '`' => {
                chars.by_ref().find(|&q| q == c);
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut word = c.to_ascii_uppercase().to_string();
                while let Some(&c) = chars
                    .peek()
                    .filter(|c| c.is_ascii_alphanumeric() || **c == '_')
                {
                    word.push(c.to_ascii_uppercase());
                    chars.next();
                }
                words.push(word);
            }
            c if c.is_ascii_digit() => {
                while chars
                    .next_if(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .is_some()
                {}
            }
            _ => {}
        }
    }
    words
}

/// The expansion: the function as written, its body preceded by the routing.
fn gen_function(kind: Kind, args: &Args, func: &FnItem, source: TokenStream) -> TokenStream {
    let FnItem {
        outer_attrs,
        inner_attrs,
        vis,
        sig,
        body,
    } = func;
    let conn = args.conn_ident();
    let routed = Ident::new("__diesel_rw_routed", Span::mixed_site());
    let role = kind.role();
    let block = quote!({ #body });
    let run = if args.transaction.is_some() {
        quote! {
            ::diesel_rw::__private::Connection::transaction(#conn, |#conn| #block)
        }
    } else {
        // The body's value is bound before it is returned so that its temporaries (a cursor
        // borrowing `conn`, say) are dropped before the guard is. The annotation keeps the
        // coercions the body's tail had as the function's return value.
        let result = Ident::new("__diesel_rw_result", Span::mixed_site());
        let ty = match &sig.output {
            ReturnType::Type(_, ty) if !has_impl_trait(ty) => quote!(: #ty),
            _ => TokenStream::new(),
        };
        // A body that ends in `return` makes the last line unreachable: the user's code is not.
        quote! {
            let #result #ty = #block;
            #[allow(unreachable_code)]
            #result
        }
    };
    quote! {
        #(#outer_attrs)*
        #vis #sig {
            #(#inner_attrs)*
            let mut #routed = ::diesel_rw::__private::route(#source, #role)?;
            let #conn: &mut ::diesel_rw::__private::RwConnection<_> =
                ::diesel_rw::__private::BorrowMut::borrow_mut(&mut #routed);
            #run
        }
    }
}

/// The expansion of an `async fn`: as [`gen_function`]'s, with the route awaited, an
/// `AsyncRwConnection`, and diesel-async's transaction.
fn gen_async_function(kind: Kind, args: &Args, func: &FnItem, source: TokenStream) -> TokenStream {
    let FnItem {
        outer_attrs,
        inner_attrs,
        vis,
        sig,
        body,
    } = func;
    let routed = async_routing(kind, args, source, body, &sig.output);
    quote! {
        #(#outer_attrs)*
        #vis #sig {
            #(#inner_attrs)*
            #routed
        }
    }
}

/// The expansion of an `#[async_trait]` method: the function as async_trait wrote it, with the
/// routing of an `async fn` returning the future's `Output` inside its `async move` block.
fn gen_async_trait(
    kind: Kind,
    args: &Args,
    func: &FnItem,
    source: TokenStream,
    boxed: Box<BoxedFuture>,
) -> TokenStream {
    let FnItem {
        outer_attrs,
        inner_attrs,
        vis,
        sig,
        body: _,
    } = func;
    // After async_trait's prologue, `self` has moved to `__self`.
    let source = match &boxed.receiver {
        Some(receiver) => replace_self(source, receiver),
        None => source,
    };
    let output = ReturnType::Type(Default::default(), Box::new(boxed.output.clone()));
    let routed = async_routing(kind, args, source, &boxed.body(), &output);
    let call = boxed.replace_body(routed);
    quote! {
        #(#outer_attrs)*
        #vis #sig {
            #(#inner_attrs)*
            #call
        }
    }
}

/// The statements of an async function's body that route `source` and run `body` (which ends
/// in the function's value, of type `output`) with the connection bound.
fn async_routing(
    kind: Kind,
    args: &Args,
    source: TokenStream,
    body: &TokenStream,
    output: &ReturnType,
) -> TokenStream {
    let conn = args.conn_ident();
    let routed = Ident::new("__diesel_rw_routed", Span::mixed_site());
    let role = kind.role();
    let block = quote!({ #body });
    let run = if args.transaction.is_some() {
        // The closure's return type is written out: the expected type of the function's value
        // does not reach through `.await`, and the body's `?` needs the error type.
        let ret = match output {
            ReturnType::Type(arrow, ty) => {
                let ty = infer_impl_trait(ty);
                quote!(#arrow #ty)
            }
            ReturnType::Default => TokenStream::new(),
        };
        quote! {
            ::diesel_rw::__private::AsyncConnection::transaction(#conn, async |#conn| #ret #block)
                .await
        }
    } else {
        let result = Ident::new("__diesel_rw_result", Span::mixed_site());
        let ty = match output {
            ReturnType::Type(_, ty) if !has_impl_trait(ty) => quote!(: #ty),
            _ => TokenStream::new(),
        };
        quote! {
            let #result #ty = #block;
            #[allow(unreachable_code)]
            #result
        }
    };
    quote! {
        let mut #routed = ::diesel_rw::__private::route_async(#source, #role).await?;
        let #conn: &mut ::diesel_rw::__private::AsyncRwConnection<_> =
            ::diesel_rw::__private::BorrowMut::borrow_mut(&mut #routed);
        #run
    }
}

/// `tokens` with each `self` (not a path's `self::`) replaced by `receiver`.
fn replace_self(tokens: TokenStream, receiver: &Ident) -> TokenStream {
    use proc_macro2::{Group, TokenTree};
    let mut out = Vec::new();
    let mut iter = tokens.into_iter().peekable();
    while let Some(tt) = iter.next() {
        let tt = match tt {
            TokenTree::Ident(ident) if ident == "self" => {
                let path = matches!(iter.peek(), Some(TokenTree::Punct(p)) if p.as_char() == ':');
                if path {
                    TokenTree::Ident(ident)
                } else {
                    TokenTree::Ident(receiver.clone())
                }
            }
            TokenTree::Group(group) => {
                let mut replaced =
                    Group::new(group.delimiter(), replace_self(group.stream(), receiver));
                replaced.set_span(group.span());
                TokenTree::Group(replaced)
            }
            other => other,
        };
        out.push(tt);
    }
    out.into_iter().collect()
}

/// `ty` with each `impl Trait` replaced by `_`, for a type annotation in a body.
fn infer_impl_trait(ty: &Type) -> Type {
    struct Infer;
    impl syn::visit_mut::VisitMut for Infer {
        fn visit_type_mut(&mut self, ty: &mut Type) {
            if let Type::ImplTrait(impl_trait) = ty {
                *ty = Type::Infer(syn::TypeInfer {
                    underscore_token: syn::Token![_](impl_trait.impl_token.span),
                });
            } else {
                syn::visit_mut::visit_type_mut(self, ty);
            }
        }
    }
    let mut ty = ty.clone();
    syn::visit_mut::VisitMut::visit_type_mut(&mut Infer, &mut ty);
    ty
}

fn has_impl_trait(ty: &Type) -> bool {
    #[derive(Default)]
    struct Finder(bool);
    impl<'ast> Visit<'ast> for Finder {
        fn visit_type_impl_trait(&mut self, _: &'ast syn::TypeImplTrait) {
            self.0 = true;
        }
    }
    let mut finder = Finder::default();
    finder.visit_type(ty);
    finder.0
}

/// The function as written, with its connection name bound to the one `compile_error!`. A second
/// routing attribute stays: it expands around this, and its import is not reported unused.
fn gen_error(args: &Args, func: &FnItem, error: syn::Error) -> TokenStream {
    let FnItem {
        outer_attrs,
        inner_attrs,
        vis,
        sig,
        body,
    } = func;
    let conn = args.conn_ident();
    let error = error.to_compile_error();
    quote! {
        #(#outer_attrs)*
        #vis #sig {
            #(#inner_attrs)*
            let #conn = #error;
            #body
        }
    }
}

/// The item as written, plus an error that says the attribute belongs on a function.
fn not_a_function(kind: Kind, item: TokenStream) -> TokenStream {
    let name = kind.name();
    let error = if let Ok(decl) = syn::parse2::<TraitItemFn>(item.clone()) {
        let (sig, semi) = (&decl.sig, &decl.semi_token);
        syn::Error::new_spanned(
            quote!(#sig #semi),
            format!(
                "`#[{name}]` needs a function body to route: put it on the method in the `impl` \
                 block, not on the trait's declaration"
            ),
        )
    } else if let Ok(parsed) = syn::parse2::<Item>(item.clone()) {
        let (what, at) = describe(&parsed);
        syn::Error::new_spanned(
            at,
            format!("`#[{name}]` routes functions and methods, not {what}: put it on each function to route"),
        )
    } else {
        syn::Error::new(
            Span::call_site(),
            format!("`#[{name}]` routes functions and methods: put it on a function"),
        )
    };
    let error = error.to_compile_error();
    quote!(#item #error)
}

/// What an item is, and the tokens that show it (its keyword and name).
fn describe(item: &Item) -> (&'static str, TokenStream) {
    fn two(a: &impl ToTokens, b: &impl ToTokens) -> TokenStream {
        quote!(#a #b)
    }
    match item {
        Item::Const(i) => ("a constant", two(&i.const_token, &i.ident)),
        Item::Enum(i) => ("an enum", two(&i.enum_token, &i.ident)),
        Item::ExternCrate(i) => ("an `extern crate`", two(&i.extern_token, &i.ident)),
        Item::ForeignMod(i) => ("an `extern` block", i.abi.to_token_stream()),
        Item::Impl(i) => ("an `impl` block", two(&i.impl_token, &i.self_ty)),
        Item::Macro(i) => ("a macro invocation", i.mac.path.to_token_stream()),
        Item::Mod(i) => ("a module", two(&i.mod_token, &i.ident)),
        Item::Static(i) => ("a static", two(&i.static_token, &i.ident)),
        Item::Struct(i) => ("a struct", two(&i.struct_token, &i.ident)),
        Item::Trait(i) => ("a trait", two(&i.trait_token, &i.ident)),
        Item::TraitAlias(i) => ("a trait alias", two(&i.trait_token, &i.ident)),
        Item::Type(i) => ("a type alias", two(&i.type_token, &i.ident)),
        Item::Union(i) => ("a union", two(&i.union_token, &i.ident)),
        Item::Use(i) => ("a `use` declaration", i.use_token.to_token_stream()),
        other => ("this item", other.to_token_stream()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_by_first_keyword() {
        for sql in [
            "SELECT * FROM users",
            "  select id from users",
            "-- who\nSELECT 1",
            "/* a comment */ (SELECT 1) UNION (SELECT 2)",
            "WITH t AS (SELECT 1) SELECT * FROM t",
            "SHOW TABLES",
            "EXPLAIN SELECT 1",
            "VALUES (1)",
            "SELECT 'DELETE FROM t'",
            "SELECT \"update\" FROM t",
            "SELECT deleted_at, updated FROM t",
            "",
        ] {
            assert_eq!(classify(sql), Sql::Read, "{sql}");
        }
    }

    #[test]
    fn writes_by_keyword() {
        assert_eq!(
            classify("INSERT INTO t VALUES (1)"),
            Sql::Write("INSERT ...".into())
        );
        assert_eq!(classify(" delete from t"), Sql::Write("DELETE ...".into()));
        assert_eq!(
            classify("create table t (x int)"),
            Sql::Write("CREATE ...".into())
        );
        assert_eq!(
            classify("WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d"),
            Sql::Write("WITH ... DELETE".into())
        );
        assert_eq!(
            classify("SELECT * FROM t FOR UPDATE"),
            Sql::Write("SELECT ... UPDATE".into())
        );
        assert_eq!(
            classify("PRAGMA user_version"),
            Sql::Unknown("PRAGMA ...".into())
        );
        assert_eq!(classify("1 = 1"), Sql::Read);
        assert_eq!(classify("count(*)"), Sql::Unknown("COUNT ...".into()));
    }

    fn expand(kind: Kind, args: TokenStream, item: TokenStream) -> String {
        let args = syn::parse2::<Args>(args).unwrap();
        attribute(kind, args, item).to_string()
    }

    #[test]
    fn read_only_routes_the_first_argument_to_a_replica() {
        let item = quote! {
            fn find(db: &RwPool<PgConnection>, id: i32) -> QueryResult<User> {
                users.find(id).first(conn)
            }
        };
        let expected = quote! {
            fn find(db: &RwPool<PgConnection>, id: i32) -> QueryResult<User> {
                let mut __diesel_rw_routed =
                    ::diesel_rw::__private::route(db, ::diesel_rw::__private::Role::Replica)?;
                let conn: &mut ::diesel_rw::__private::RwConnection<_> =
                    ::diesel_rw::__private::BorrowMut::borrow_mut(&mut __diesel_rw_routed);
                let __diesel_rw_result: QueryResult<User> = { users.find(id).first(conn) };
                #[allow(unreachable_code)]
                __diesel_rw_result
            }
        };
        assert_eq!(expand(Kind::ReadOnly, quote!(), item), expected.to_string());
    }

    #[test]
    fn master_transaction_reborrows_a_mut_source() {
        let item = quote! {
            fn add(db: &mut RwConnection<PgConnection>) -> QueryResult<usize> { go(tx) }
        };
        let expected = quote! {
            fn add(db: &mut RwConnection<PgConnection>) -> QueryResult<usize> {
                let mut __diesel_rw_routed =
                    ::diesel_rw::__private::route(&mut *db, ::diesel_rw::__private::Role::Primary)?;
                let tx: &mut ::diesel_rw::__private::RwConnection<_> =
                    ::diesel_rw::__private::BorrowMut::borrow_mut(&mut __diesel_rw_routed);
                ::diesel_rw::__private::Connection::transaction(tx, |tx| { go(tx) })
            }
        };
        let args = quote!(transaction, conn = tx);
        assert_eq!(expand(Kind::Master, args, item), expected.to_string());
    }

    #[test]
    fn async_fn_awaits_the_route_and_uses_diesel_async_transaction() {
        let item = quote! {
            async fn add(db: &AsyncRwPool<Pg>, name: &str) -> QueryResult<usize> { go(conn).await }
        };
        let expected = quote! {
            async fn add(db: &AsyncRwPool<Pg>, name: &str) -> QueryResult<usize> {
                let mut __diesel_rw_routed =
                    ::diesel_rw::__private::route_async(db, ::diesel_rw::__private::Role::Primary)
                        .await?;
                let conn: &mut ::diesel_rw::__private::AsyncRwConnection<_> =
                    ::diesel_rw::__private::BorrowMut::borrow_mut(&mut __diesel_rw_routed);
                ::diesel_rw::__private::AsyncConnection::transaction(
                    conn,
                    async |conn| -> QueryResult<usize> { go(conn).await }
                )
                .await
            }
        };
        assert_eq!(
            expand(Kind::Master, quote!(transaction), item),
            expected.to_string()
        );
    }

    /// What async_trait 0.1 makes of `async fn names(&mut self) -> QueryResult<Vec<String>>`.
    fn async_trait_item(body: TokenStream) -> TokenStream {
        quote! {
            fn names<'life0, 'async_trait>(&'life0 mut self)
                -> ::core::pin::Pin<Box<dyn ::core::future::Future<
                    Output = QueryResult<Vec<String>>> + ::core::marker::Send + 'async_trait>>
            where 'life0: 'async_trait, Self: 'async_trait
            {
                Box::pin(async move {
                    if let ::core::option::Option::Some(__ret) =
                        ::core::option::Option::None::<QueryResult<Vec<String>>> {
                        #[allow(unreachable_code)]
                        return __ret;
                    }
                    let mut __self = self;
                    let __ret: QueryResult<Vec<String>> = { #body };
                    #[allow(unreachable_code)]
                    __ret
                })
            }
        }
    }

    #[test]
    fn async_trait_method_routes_inside_the_boxed_future_after_the_prologue() {
        let item = async_trait_item(quote!(load(conn).await));
        let routed = quote! {
            let mut __diesel_rw_routed = ::diesel_rw::__private::route_async(
                &__self.pool,
                ::diesel_rw::__private::Role::Replica
            )
            .await?;
            let conn: &mut ::diesel_rw::__private::AsyncRwConnection<_> =
                ::diesel_rw::__private::BorrowMut::borrow_mut(&mut __diesel_rw_routed);
            let __diesel_rw_result: QueryResult<Vec<String>> = { load(conn).await };
            #[allow(unreachable_code)]
            __diesel_rw_result
        };
        // Printed through syn, as the expansion is (`>>` is one token in `quote!`, two there).
        let expected = syn::parse2::<syn::ItemFn>(async_trait_item(routed)).unwrap();
        assert_eq!(
            expand(Kind::ReadOnly, quote!(pool = &self.pool), item),
            expected.to_token_stream().to_string()
        );
    }

    #[test]
    fn async_trait_method_checks_the_body_and_the_output() {
        let item = async_trait_item(quote!(diesel::delete(users::table).execute(conn).await));
        let out = expand(Kind::ReadOnly, quote!(pool = &self.pool), item);
        assert!(out.contains("`delete` writes"), "{out}");

        let unit = quote! {
            fn nothing<'life0, 'async_trait>(&'life0 self)
                -> ::core::pin::Pin<Box<dyn ::core::future::Future<Output = ()>
                    + ::core::marker::Send + 'async_trait>>
            where 'life0: 'async_trait, Self: 'async_trait
            {
                Box::pin(async move { let __self = self; let _: () = { go(conn).await }; })
            }
        };
        let out = expand(Kind::Master, quote!(pool = &self.pool), unit);
        assert!(
            out.contains("needs the function to return a `Result`"),
            "{out}"
        );
    }

    #[test]
    fn replace_self_leaves_paths_alone() {
        let receiver = Ident::new("__self", Span::call_site());
        let out = replace_self(quote!(&self.pools[self::FIRST].get(self)), &receiver);
        assert_eq!(
            out.to_string(),
            quote!(&__self.pools[self::FIRST].get(__self)).to_string()
        );
    }

    #[test]
    fn misuse_is_the_item_with_its_binding_set_to_one_error() {
        let item = quote! {
            fn add(db: &RwPool<PgConnection>) -> QueryResult<usize> { go(tx) }
        };
        let expected = quote! {
            fn add(db: &RwPool<PgConnection>) -> QueryResult<usize> {
                let tx = ::core::compile_error! {
                    "unknown option `replica`: the options are `transaction`, `conn = <name>` and `pool = <expr>`"
                };
                go(tx)
            }
        };
        let args = quote!(replica = 1, conn = tx);
        assert_eq!(expand(Kind::Master, args, item), expected.to_string());
    }
}
