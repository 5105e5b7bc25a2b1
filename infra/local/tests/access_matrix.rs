//! The access matrix (`shared::access`) and the template agree: every route behind the
//! session authorizer that a citizen can reach has a row, and every row is a route.
//! A route added to the template without one would be refused to every citizen.

use std::collections::BTreeSet;
use std::path::Path;

use shared::access::{capability_of_route, for_other_principals, CITIZEN_ROUTES};
use uslugi_local::intrinsics::Resolver;
use uslugi_local::model::{plan, RouteAuth};
use uslugi_local::template::Template;

#[test]
fn every_citizen_route_has_a_row_and_every_row_a_route() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
    let template = Template::load(&path).unwrap();
    let mut resolver = Resolver::new(&template, &[]).unwrap();
    let plan = plan(&mut resolver, "http://127.0.0.1:5000").unwrap();
    let mut private = BTreeSet::new();
    for function in &plan.functions {
        for event in &function.http_events {
            let Some(path) = &event.path else { continue };
            let key = format!("{} {path}", event.method);
            if event.auth == RouteAuth::None || for_other_principals(&key) {
                continue;
            }
            private.insert(key);
        }
    }
    let missing: Vec<_> = private
        .iter()
        .filter(|key| capability_of_route(key).is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "routes with no row in the matrix: {missing:?}"
    );
    let stale: Vec<_> = CITIZEN_ROUTES
        .iter()
        .map(|(key, _)| key.to_string())
        .filter(|key| !private.contains(key))
        .collect();
    assert!(stale.is_empty(), "rows with no route: {stale:?}");
    assert_eq!(private.len(), CITIZEN_ROUTES.len());
}
