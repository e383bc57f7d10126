//! The attributes' arguments: `transaction`, `conn = <name>`, `pool = <expr>`.
//!
//! Each argument has its own [`Parse`] impl; [`Args`] puts them together, detecting unknown and
//! duplicate options. Parsing goes on past the first error (to the next `,`), so that the
//! expansion still knows the binding name (`conn = ...`) when it reports that error: the item is
//! then emitted with that name bound, and the user sees the one error and not a cascade of
//! "cannot find value `conn`".

use proc_macro2::{Span, TokenTree};
use quote::ToTokens;
use syn::parse::{Parse, ParseStream};
use syn::{Expr, Ident, Token};

/// The options' keywords.
pub(crate) mod kw {
    syn::custom_keyword!(transaction);
    syn::custom_keyword!(conn);
    syn::custom_keyword!(pool);
}

/// What an attribute was given. Never fails to parse: the first problem is kept in `error`.
#[derive(Default)]
pub(crate) struct Args {
    /// `transaction`: run the body in a transaction on the route.
    pub(crate) transaction: Option<kw::transaction>,
    /// `conn = <name>`: the name the connection is bound to in the body.
    pub(crate) conn: Option<Ident>,
    /// `pool = <expr>`: the route source, used as written.
    pub(crate) pool: Option<Expr>,
    /// The first error found in the arguments, if any.
    pub(crate) error: Option<syn::Error>,
}

impl Args {
    /// The name of the connection binding: `conn` unless renamed.
    pub(crate) fn conn_ident(&self) -> Ident {
        self.conn
            .clone()
            .unwrap_or_else(|| Ident::new("conn", Span::call_site()))
    }

    fn fail(&mut self, error: syn::Error) {
        self.error.get_or_insert(error);
    }

    fn add(&mut self, arg: Arg) {
        match arg {
            Arg::Transaction(TransactionArg(kw)) => {
                if self.transaction.is_some() {
                    self.fail(duplicate(kw.span, "transaction"));
                } else {
                    self.transaction = Some(kw);
                }
            }
            Arg::Conn(ConnArg { kw, name }) => {
                if self.conn.is_some() {
                    self.fail(duplicate(kw.span, "conn"));
                } else {
                    self.conn = Some(name);
                }
            }
            Arg::Pool(PoolArg { kw, expr }) => {
                if self.pool.is_some() {
                    self.fail(duplicate(kw.span, "pool"));
                } else {
                    self.pool = Some(expr);
                }
            }
        }
    }
}

fn duplicate(span: Span, option: &str) -> syn::Error {
    syn::Error::new(span, format!("duplicate option `{option}`: give it once"))
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut args = Args::default();
        while !input.is_empty() {
            match input.parse::<Arg>() {
                Ok(arg) => args.add(arg),
                Err(error) => {
                    args.fail(error);
                    skip_to_comma(input)?;
                }
            }
            if input.is_empty() {
                break;
            }
            if input.peek(Token![,]) {
                input.parse::<Token![,]>()?;
            } else {
                args.fail(input.error("expected `,` between options"));
                skip_to_comma(input)?;
                if input.peek(Token![,]) {
                    input.parse::<Token![,]>()?;
                }
            }
        }
        Ok(args)
    }
}

/// Skips the rest of a malformed option, up to (not including) the next top-level `,`.
fn skip_to_comma(input: ParseStream<'_>) -> syn::Result<()> {
    input.step(|cursor| {
        let mut rest = *cursor;
        while let Some((tt, next)) = rest.token_tree() {
            if matches!(&tt, TokenTree::Punct(p) if p.as_char() == ',') {
                break;
            }
            rest = next;
        }
        Ok(((), rest))
    })
}

/// One option.
enum Arg {
    Transaction(TransactionArg),
    Conn(ConnArg),
    Pool(PoolArg),
}

impl Parse for Arg {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let lookahead = input.lookahead1();
        if lookahead.peek(kw::transaction) {
            input.parse().map(Arg::Transaction)
        } else if lookahead.peek(kw::conn) {
            input.parse().map(Arg::Conn)
        } else if lookahead.peek(kw::pool) {
            input.parse().map(Arg::Pool)
        } else {
            let unknown: TokenTree = input.parse()?;
            let shown = match &unknown {
                TokenTree::Ident(ident) => format!("unknown option `{ident}`"),
                other => format!("unexpected `{other}`"),
            };
            Err(syn::Error::new_spanned(
                unknown,
                format!(
                    "{shown}: the options are `transaction`, `conn = <name>` and `pool = <expr>`"
                ),
            ))
        }
    }
}

/// `transaction`.
struct TransactionArg(kw::transaction);

impl Parse for TransactionArg {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        input.parse().map(TransactionArg)
    }
}

/// `conn = <name>`.
struct ConnArg {
    kw: kw::conn,
    name: Ident,
}

impl Parse for ConnArg {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        const USAGE: &str = "`conn` takes the name to bind the connection to, like `conn = tx`";
        let kw: kw::conn = input.parse()?;
        equals(input, kw.span, USAGE)?;
        if input.is_empty() || input.peek(Token![,]) {
            return Err(syn::Error::new(kw.span, USAGE));
        }
        let value: TokenTree = input.parse()?;
        // `Ident`'s parser refuses keywords (`self`, `_`) as well as literals.
        let name = syn::parse2::<Ident>(value.to_token_stream())
            .map_err(|_| syn::Error::new_spanned(&value, USAGE))?;
        Ok(ConnArg { kw, name })
    }
}

/// `pool = <expr>`.
struct PoolArg {
    kw: kw::pool,
    expr: Expr,
}

impl Parse for PoolArg {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        const USAGE: &str = "`pool` takes the expression to route from, like `pool = &self.pool`";
        let kw: kw::pool = input.parse()?;
        equals(input, kw.span, USAGE)?;
        if input.is_empty() || input.peek(Token![,]) {
            return Err(syn::Error::new(kw.span, USAGE));
        }
        let expr = input.parse()?;
        Ok(PoolArg { kw, expr })
    }
}

/// The `=` of `name = value`, or `usage` at the option's name.
fn equals(input: ParseStream<'_>, option: Span, usage: &str) -> syn::Result<()> {
    if input.peek(Token![=]) {
        input.parse::<Token![=]>().map(drop)
    } else {
        Err(syn::Error::new(option, usage))
    }
}
