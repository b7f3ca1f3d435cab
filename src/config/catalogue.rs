//! Validation of the basket catalogue (SPEC section 8): `[[product]]`, `[basket]` and
//! `[[rebate]]`, every problem reported at once and keyed like the rest of the config
//! (`product[1].unlocks[0]`, `basket.tax_rate`, `rebate[0].product`).

use std::collections::{HashMap, HashSet};

use super::{file, Basket, Product, Rebate, Route, Server, Validator};
use crate::amount::Amount;
use crate::basket::bill::TaxRate;
use crate::routes::{pattern_covers, patterns_overlap, Pattern, RouteTable};

/// Longest product id, in characters.
const MAX_ID: usize = 64;
/// Longest description, in characters.
const MAX_DESCRIPTION: usize = 200;
/// Longest `basket.shop_id`, in characters.
const MAX_SHOP_ID: usize = 200;
/// `max_count` when not given.
const DEFAULT_MAX_COUNT: u32 = 100;
/// Largest `max_count`.
const MAX_COUNT: u32 = 10_000;
/// Longest `basket.ttl`: 30 days.
const MAX_TTL_SECS: u64 = 30 * 86_400;

/// The catalogue sections as read from the file.
pub(super) struct CatalogueFile {
    /// `[[product]]`s (`None`: that entry did not deserialize, already reported).
    pub products: Vec<Option<file::ProductFile>>,
    /// `[basket]`, when present.
    pub basket: Option<file::BasketFile>,
    /// `[[rebate]]`s.
    pub rebates: Vec<Option<file::RebateFile>>,
}

/// One `unlocks` pattern already accepted, to find overlaps with later ones.
struct Claimed {
    product: usize,
    id: String,
    index: usize,
    text: String,
    pattern: Pattern,
}

impl Validator<'_> {
    /// Validates the catalogue against the (already validated) priced routes.
    pub(super) fn catalogue(
        &mut self,
        c: CatalogueFile,
        decimals: u32,
        server: Option<&Server>,
        routes: &RouteTable<Route>,
    ) -> (Vec<Product>, Basket, Vec<Rebate>) {
        if c.products.is_empty() {
            if c.basket.is_some() {
                self.problem(
                    "basket",
                    "there is nothing to sell: add a [[product]] or remove [basket]",
                );
            }
            if !c.rebates.is_empty() {
                self.problem(
                    "rebate",
                    "there is nothing to sell: add a [[product]] or remove [[rebate]]",
                );
            }
        }
        // Ids as written, also of products with other mistakes, so a rebate on them
        // is not reported a second time as an unknown product.
        let ids: HashSet<String> = c.products.iter().flatten().map(|p| p.id.clone()).collect();
        let products = self.products(c.products, decimals, server, routes);
        let basket = self.basket(c.basket, decimals, server);
        let rebates = self.rebates(c.rebates, &ids);
        (products, basket, rebates)
    }

    fn products(
        &mut self,
        products: Vec<Option<file::ProductFile>>,
        decimals: u32,
        server: Option<&Server>,
        routes: &RouteTable<Route>,
    ) -> Vec<Product> {
        // A case-insensitive origin: patterns are matched lower-cased, as routes are.
        let fold = server.is_some_and(|s| s.upstream_case_insensitive);
        let priced: Vec<&Pattern> = routes
            .iter_by_specificity()
            .filter(|(_, r)| !r.price.is_zero())
            .map(|(p, _)| p)
            .collect();
        let mut ids = HashSet::new();
        let mut claimed = Vec::new();
        let mut out = Vec::new();
        for (i, p) in products.into_iter().enumerate() {
            let Some(p) = p else { continue };
            let key = |k: &str| format!("product[{i}].{k}");
            match check_id(&p.id) {
                Err(e) => self.problem(&key("id"), &e),
                Ok(()) if !ids.insert(p.id.clone()) => {
                    self.problem(&key("id"), &format!("{:?} is defined twice", p.id))
                }
                Ok(()) => {}
            }
            if let Err(e) = check_text(&p.description, MAX_DESCRIPTION) {
                self.problem(
                    &key("description"),
                    &format!("{e}: it is printed on every bill"),
                );
            }
            let price = self.amount(&key("price"), &p.price, decimals);
            if price.is_some_and(Amount::is_zero) {
                self.problem(
                    &key("price"),
                    "must be more than 0 (a free path needs no basket: price its route \"0\")",
                );
            }
            let price = price.unwrap_or_default();
            let max_count = p.max_count.unwrap_or(DEFAULT_MAX_COUNT);
            if !(1..=MAX_COUNT).contains(&max_count) {
                self.problem(
                    &key("max_count"),
                    &format!("{max_count} must be between 1 and {MAX_COUNT}"),
                );
            }
            if p.unlocks.is_empty() {
                self.problem(
                    &key("unlocks"),
                    "must list the path patterns one purchase unlocks, e.g. [\"/albums/a/*\"]",
                );
            }
            let unlocks = self.unlocks(i, &p.id, &p.unlocks, fold, &priced, &mut claimed);
            out.push(Product {
                id: p.id,
                description: p.description,
                price,
                unlocks,
                ships: p.ships,
                max_count,
            });
        }
        out
    }

    /// Checks product `i`'s `unlocks` (folded when the origin ignores case) and
    /// returns them as stored.
    fn unlocks(
        &mut self,
        i: usize,
        id: &str,
        unlocks: &[String],
        fold: bool,
        priced: &[&Pattern],
        claimed: &mut Vec<Claimed>,
    ) -> Vec<String> {
        let mut texts: Vec<String> = Vec::with_capacity(unlocks.len());
        for (j, u) in unlocks.iter().enumerate() {
            let key = format!("product[{i}].unlocks[{j}]");
            let text = if fold {
                u.to_ascii_lowercase()
            } else {
                u.clone()
            };
            let twice = texts.contains(&text);
            texts.push(text.clone());
            let pattern = match Pattern::parse(&text) {
                Ok(p) => p,
                Err(e) => {
                    self.problem(&key, &format!("{u:?} {e}"));
                    continue;
                }
            };
            if twice {
                self.problem(&key, &format!("{u:?} is listed twice"));
                continue;
            }
            for c in claimed
                .iter()
                .filter(|c| patterns_overlap(&c.pattern, &pattern))
            {
                let other = if c.product == i {
                    format!("unlocks[{}] {:?}", c.index, c.text)
                } else {
                    format!(
                        "product[{}].unlocks[{}] {:?} (of {:?})",
                        c.product, c.index, c.text, c.id
                    )
                };
                let message = format!(
                    "{u:?} overlaps {other}: a path unlocked twice makes a refund ambiguous"
                );
                self.problem(&key, &message);
            }
            if !priced.iter().any(|r| pattern_covers(r, &pattern)) {
                self.problem(
                    &key,
                    &format!(
                        "{u:?} is not under any priced [[route]]: what the basket sells must be what the proxy gates"
                    ),
                );
            }
            claimed.push(Claimed {
                product: i,
                id: id.to_string(),
                index: j,
                text,
                pattern,
            });
        }
        texts
    }

    fn basket(
        &mut self,
        b: Option<file::BasketFile>,
        decimals: u32,
        server: Option<&Server>,
    ) -> Basket {
        let b = b.unwrap_or_default();
        let tax_rate = TaxRate::parse(&b.tax_rate).unwrap_or_else(|| {
            self.problem(
                "basket.tax_rate",
                &format!(
                    "{:?} must be a decimal fraction between 0 and 1, like \"0.20\" for 20 %",
                    b.tax_rate
                ),
            );
            TaxRate::ZERO
        });
        let shipping = self
            .amount("basket.shipping", &b.shipping, decimals)
            .unwrap_or_default();
        let max_total = self.amount("basket.max_total", &b.max_total, decimals);
        if max_total.is_some_and(Amount::is_zero) {
            self.problem("basket.max_total", "must be more than 0");
        }
        let ttl_secs = self.duration("basket.ttl", &b.ttl).unwrap_or(3600);
        if ttl_secs > MAX_TTL_SECS {
            self.problem("basket.ttl", "must be at most 30d");
        }
        let shop_id = match b.shop_id {
            Some(s) => {
                if let Err(e) = check_text(&s, MAX_SHOP_ID) {
                    self.problem("basket.shop_id", &e);
                }
                s
            }
            // public_url is validated as scheme://host[:port], without a path.
            None => server
                .and_then(|s| s.public_url.split_once("://"))
                .map(|(_, authority)| authority.to_string())
                .unwrap_or_default(),
        };
        Basket {
            shop_id,
            tax_rate,
            shipping,
            max_total: max_total.unwrap_or_default(),
            ttl_secs,
        }
    }

    fn rebates(
        &mut self,
        rebates: Vec<Option<file::RebateFile>>,
        ids: &HashSet<String>,
    ) -> Vec<Rebate> {
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut out = Vec::new();
        for (i, r) in rebates.into_iter().enumerate() {
            let Some(r) = r else { continue };
            let key = |k: &str| format!("rebate[{i}].{k}");
            if !ids.contains(&r.product) {
                self.problem(
                    &key("product"),
                    &format!(
                        "unknown product {:?}: no [[product]] has this id",
                        r.product
                    ),
                );
            } else if let Some(h) = seen.insert(r.product.clone(), i) {
                self.problem(
                    &key("product"),
                    &format!(
                        "{:?} already has a rebate (rebate[{h}]): at most one per product",
                        r.product
                    ),
                );
            }
            if r.buy < 2 {
                self.problem(
                    &key("buy"),
                    &format!(
                        "{} must be at least 2 (\"3 for 2\" is buy = 3, pay = 2)",
                        r.buy
                    ),
                );
            }
            if r.pay == 0 || (r.buy >= 2 && r.pay >= r.buy) {
                self.problem(
                    &key("pay"),
                    &format!("{} must be at least 1 and less than buy ({})", r.pay, r.buy),
                );
            }
            out.push(Rebate {
                product: r.product,
                buy: r.buy,
                pay: r.pay,
            });
        }
        out
    }
}

/// A product id: 1 to 64 of `[A-Za-z0-9._-]`, not starting with `tollgate` (in any
/// case: the bill's own lines are `tollgate:tax`, `tollgate:rebate:<id>`, …).
fn check_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("must not be empty".into());
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "has {c:?}: use only letters, digits, '.', '_' and '-'"
        ));
    }
    // Only ASCII from here on: bytes are characters.
    if id.len() > MAX_ID {
        return Err(format!("is {} characters long; at most {MAX_ID}", id.len()));
    }
    if id
        .get(..8)
        .is_some_and(|p| p.eq_ignore_ascii_case("tollgate"))
    {
        return Err(format!(
            "{id:?} starts with \"tollgate\", which is reserved for the bill's own lines (tollgate:tax, …)"
        ));
    }
    Ok(())
}

/// Text shown to people: not blank, at most `max` characters, no control characters.
fn check_text(s: &str, max: usize) -> Result<(), String> {
    if s.trim().is_empty() {
        return Err("must not be empty".into());
    }
    let n = s.chars().count();
    if n > max {
        return Err(format!("is {n} characters long; at most {max}"));
    }
    if s.chars().any(char::is_control) {
        return Err("must be printable (no control characters such as newlines or tabs)".into());
    }
    Ok(())
}
