//! Paying for an organisation against the doubles: who may, where the payment is kept,
//! whom the receipt goes to, and the audit entry.

use super::*;
use crate::adapters::business_registry::ogrn_of;
use crate::domain::{Inn, Kpp, Ogrn, OrgRole, OrganisationIdentity, Payer, PayerKind};
use crate::services::organisations::AuditEntry;
use crate::services::organisations::{Membership, OrgStatus, Organisation};
use crate::testing::{test_hasher, Acquirer, Clock, MemStore, Outbox, Reply};

type Service = PaymentService<MemStore, Acquirer, Outbox, MemStore>;

/// The company's unpaid bill, naming its INN and KPP.
const UIN: &str = "18810177200000012341";
const INN: &str = "7707083893";
const OFFICE: &str = "office-1@example.ru";

struct World {
    store: MemStore,
    acquirer: Acquirer,
    outbox: Outbox,
    clock: Clock,
    service: Service,
    org: OrganisationId,
}

fn member(org: &OrganisationId, account: &str, role: OrgRole) -> Membership {
    Membership {
        organisation_id: org.clone(),
        account_id: account.into(),
        role,
        active: true,
        since: 0,
    }
}

/// A registered company with an owner, an accountant and a viewer; a citizen
/// `stranger`; the company's bill [`UIN`] (3 000 ₽).
fn world() -> World {
    let store = MemStore::new();
    for (account, snils) in [
        ("owner", "11223344595"),
        ("accountant", "11223344596"),
        ("viewer", "11223344597"),
        ("stranger", "11223344598"),
    ] {
        store.add_citizen(&account.into(), snils);
    }
    store.add_charge(UIN, 300_000, Category::Fines, "11223344595");
    let org = OrganisationId::new();
    {
        let mut state = store.state();
        if let Some(charge) = state.charges.get_mut(UIN) {
            charge.body.payers = vec![Payer {
                kind: PayerKind::InnKpp,
                value: format!("{INN}/773601001"),
            }];
        }
        let identity = OrganisationIdentity::legal_entity(
            Inn::parse("inn", INN).unwrap(),
            Kpp::parse("kpp", "773601001").unwrap(),
            Ogrn::parse("ogrn", &ogrn_of("102770013219")).unwrap(),
        )
        .unwrap();
        let organisation = Organisation {
            id: org.clone(),
            identity,
            email: Email::parse("email", OFFICE).unwrap(),
            status: OrgStatus::Registered,
            reason: None,
            name: Some("ООО «Ромашка»".into()),
            applicant: "owner".into(),
            created_at: 0,
            decided_at: Some(0),
        };
        state.orgs.organisations.insert(org.clone(), organisation);
        for (account, role) in [
            ("owner", OrgRole::Owner),
            ("accountant", OrgRole::Accountant),
            ("viewer", OrgRole::Viewer),
        ] {
            state
                .orgs
                .members
                .insert((org.clone(), account.into()), member(&org, account, role));
        }
    }
    let (acquirer, outbox) = (Acquirer::default(), Outbox::default());
    let service = PaymentService::new(
        store.clone(),
        acquirer.clone(),
        outbox.clone(),
        store.clone(),
        test_hasher(),
    );
    World {
        store,
        acquirer,
        outbox,
        clock: Clock::new(),
        service,
        org,
    }
}

fn by_card(uin: &str) -> PayRequest {
    PayRequest {
        uins: vec![Uin::parse("uin", uin).unwrap()],
        method: MethodRequest::CardToken("tok_visa".into()),
    }
}

impl World {
    fn member(&self, account: &str) -> PayingAs {
        PayingAs::Member {
            account: account.into(),
            organisation: self.org.clone(),
        }
    }

    async fn pay(&self, paying: &PayingAs, key: &str) -> Result<PayOutcome, AppError> {
        self.service
            .pay(paying, key, &by_card(UIN), "citizen", self.clock.now())
            .await
    }

    /// The actions of the organisation's audit log, oldest first.
    fn audit(&self) -> Vec<AuditEntry> {
        self.store
            .state()
            .orgs
            .audit
            .get(&self.org)
            .cloned()
            .unwrap_or_default()
    }

    /// Whether the organisation's archive is refused as not found.
    async fn archive_refused(&self, paying: &PayingAs) -> bool {
        let filter = ArchiveFilter {
            from_ms: 0,
            to_ms: 1,
            status: None,
            category: None,
            after: None,
            limit: 1,
        };
        matches!(
            self.service.archive(paying, &filter).await,
            Err(AppError::NotFound("organisation"))
        )
    }

    fn archive(&self, paying: &PayingAs) -> impl std::future::Future<Output = Vec<PaymentId>> + '_ {
        let paying = paying.clone();
        async move {
            let filter = ArchiveFilter {
                from_ms: 0,
                to_ms: i64::MAX / 2,
                status: None,
                category: None,
                after: None,
                limit: 100,
            };
            match self.service.archive(&paying, &filter).await {
                Ok(payments) => payments.into_iter().map(|p| p.id).collect(),
                Err(e) => panic!("archive refused: {e:?}"),
            }
        }
    }
}

#[tokio::test]
async fn an_accountant_pays_for_the_organisation_and_every_member_sees_it() {
    let w = world();
    let paid = w.pay(&w.member("accountant"), "org-key-1").await.unwrap();
    let payment = paid.payment;
    assert_eq!(payment.status, PaymentStatus::Succeeded);
    assert_eq!(payment.organisation_id.as_ref(), Some(&w.org));
    assert_eq!(payment.account_id.as_str(), "accountant");
    // Kept under the organisation, not the member.
    assert!(w
        .store
        .state()
        .payments
        .contains_key(&(Owner::Organisation(w.org.clone()), payment.id.clone())));
    // Every member sees it in the organisation's archive; nobody in their own.
    for who in ["owner", "accountant", "viewer"] {
        assert_eq!(
            w.archive(&w.member(who)).await,
            std::slice::from_ref(&payment.id)
        );
    }
    assert!(w
        .archive(&PayingAs::Citizen("accountant".into()))
        .await
        .is_empty());
    let own = w
        .service
        .payment(&PayingAs::Citizen("accountant".into()), &payment.id)
        .await;
    assert!(matches!(own, Err(AppError::NotFound("payment"))), "{own:?}");
    // The receipt names the organisation and goes to its e-mail.
    let receipt = w
        .service
        .receipt_of(&w.member("viewer"), &payment.id)
        .await
        .unwrap();
    assert_eq!(
        receipt["payer"],
        format!("ООО «Ромашка», ИНН {INN}, КПП 773601001")
    );
    let sent = w.outbox.sent();
    let receipts: Vec<_> = sent
        .iter()
        .filter(|m| m.subject.as_deref() == Some(RECEIPT_SUBJECT))
        .collect();
    assert_eq!(receipts.len(), 1);
    assert_eq!(receipts[0].to, OFFICE);
    // The audit log tells who paid which payment, how much.
    let audit = w.audit();
    let paid: Vec<_> = audit.iter().filter(|e| e.action == "paid").collect();
    assert_eq!(paid.len(), 1);
    assert_eq!(
        paid[0].actor.as_ref().map(|a| a.as_str()),
        Some("accountant")
    );
    assert_eq!(paid[0].payment_id.as_ref(), Some(&payment.id));
    assert_eq!(paid[0].amount, Some(payment.total));
    // The key replays, for the same member in the same organisation.
    let again = w.pay(&w.member("accountant"), "org-key-1").await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.payment.id, payment.id);
}

#[tokio::test]
async fn a_viewer_a_stranger_and_a_removed_member_pay_nothing() {
    let w = world();
    let viewer = w.pay(&w.member("viewer"), "org-key-1").await;
    assert!(matches!(viewer, Err(AppError::RoleForbids)), "{viewer:?}");
    let stranger = w.pay(&w.member("stranger"), "org-key-2").await;
    assert!(
        matches!(stranger, Err(AppError::NotFound("organisation"))),
        "{stranger:?}"
    );
    assert!(w.archive_refused(&w.member("stranger")).await);
    w.store
        .state()
        .orgs
        .members
        .remove(&(w.org.clone(), "accountant".into()));
    let removed = w.pay(&w.member("accountant"), "org-key-3").await;
    assert!(
        matches!(removed, Err(AppError::NotFound("organisation"))),
        "{removed:?}"
    );
    // Nothing was written, nothing charged.
    assert!(w.store.state().payments.is_empty());
    assert!(w.acquirer.charges().is_empty());
    assert_eq!(
        w.store.state().charge(UIN).map(|c| c.status),
        Some(ChargeStatus::Unpaid)
    );
    assert!(w.audit().is_empty());
}

#[tokio::test]
async fn a_citizens_saved_method_and_key_are_not_the_organisations() {
    let w = world();
    let saved = PayRequest {
        uins: vec![Uin::parse("uin", UIN).unwrap()],
        method: MethodRequest::Saved("m1".into()),
    };
    let refused = w
        .service
        .pay(
            &w.member("owner"),
            "org-key-1",
            &saved,
            "citizen",
            w.clock.now(),
        )
        .await;
    assert!(
        matches!(refused, Err(AppError::NotFound("payment method"))),
        "{refused:?}"
    );
    // The same key for themselves and for the organisation are two requests: the
    // second is not answered by the first's payment.
    let own = w
        .pay(&PayingAs::Citizen("owner".into()), "shared-key-1")
        .await
        .unwrap();
    assert_eq!(own.payment.organisation_id, None);
    let for_org = w.pay(&w.member("owner"), "shared-key-1").await;
    assert!(
        matches!(for_org, Err(AppError::BillPaid(_))),
        "the bill is paid by the citizen: {for_org:?}"
    );
}

#[tokio::test]
async fn an_expired_hold_of_the_organisation_is_found_under_its_key() {
    let w = world();
    w.acquirer.reply_with(Reply::AskConfirmation);
    let waiting = w.pay(&w.member("accountant"), "org-key-1").await.unwrap();
    assert_eq!(waiting.payment.status, PaymentStatus::RequiresConfirmation);
    let held = w.store.state().charge(UIN).and_then(|c| c.hold.clone());
    assert_eq!(
        held.map(|h| h.owner),
        Some(Owner::Organisation(w.org.clone()))
    );
    // A viewer may not finish it; past its hold, another payer's request withdraws it.
    let confirm = w
        .service
        .confirm(&w.member("viewer"), &waiting.payment.id, w.clock.now())
        .await;
    assert!(matches!(confirm, Err(AppError::RoleForbids)), "{confirm:?}");
    w.clock.advance(24 * 3600);
    w.acquirer.reply_with(Reply::Succeed);
    let other = w
        .pay(&PayingAs::Citizen("stranger".into()), "own-key-1")
        .await
        .unwrap();
    assert_eq!(other.payment.status, PaymentStatus::Succeeded);
    let withdrawn = w
        .service
        .payment(&w.member("owner"), &waiting.payment.id)
        .await
        .unwrap();
    assert_eq!(withdrawn.status, PaymentStatus::Declined);
    // A declined payment is no `paid` entry.
    assert!(w.audit().iter().all(|e| e.action != "paid"));
}

#[tokio::test]
async fn a_biller_refunds_the_organisation_and_its_office_is_told() {
    let w = world();
    let paid = w.pay(&w.member("accountant"), "org-key-1").await.unwrap();
    let ask = RefundRequest {
        uin: Uin::parse("uin", UIN).unwrap(),
        amount: 100_000,
        reason: "Переплата".into(),
    };
    let biller = Refunder::Biller("b1".into());
    let refund = w
        .service
        .refund(
            &biller,
            &paid.payment.id,
            "refund-key-1",
            &ask,
            w.clock.now(),
        )
        .await
        .unwrap()
        .refund;
    assert_eq!(refund.state, RefundState::Succeeded);
    assert_eq!(refund.organisation_id.as_ref(), Some(&w.org));
    // The refund is the organisation's: with its payment, under its key.
    let payment = w
        .service
        .payment(&w.member("viewer"), &paid.payment.id)
        .await
        .unwrap();
    assert_eq!(payment.refunds.refunded(), 100_000);
    let refunds = w.service.refunds_of(&payment).await.unwrap();
    assert_eq!(refunds.len(), 1);
    // Its receipt goes to the organisation's e-mail, as the payment's did.
    let told: Vec<_> = w
        .outbox
        .sent()
        .into_iter()
        .filter(|m| m.subject.as_deref() == Some(REFUND_RECEIPT_SUBJECT))
        .map(|m| m.to)
        .collect();
    assert_eq!(told, [OFFICE]);
    // The same key answers the same refund.
    let again = w
        .service
        .refund(
            &biller,
            &paid.payment.id,
            "refund-key-1",
            &ask,
            w.clock.now(),
        )
        .await
        .unwrap();
    assert!(again.replayed);
    assert_eq!(again.refund.id, refund.id);
}

#[tokio::test]
async fn the_organisations_saved_methods_are_its_own_and_audited() {
    let w = world();
    let fresh = Presence { fresh: true };
    let now = w.clock.now();
    let card = || NewMethod::Card("tok_visa".into());
    // A viewer may see them, not keep them.
    let refused = w
        .service
        .add_method(&w.member("viewer"), card(), fresh, now)
        .await;
    assert!(matches!(refused, Err(AppError::RoleForbids)), "{refused:?}");
    let saved = w
        .service
        .add_method(&w.member("accountant"), card(), fresh, now)
        .await
        .unwrap();
    let listed = w.service.methods(&w.member("viewer")).await.unwrap();
    assert_eq!(
        listed.iter().map(|m| &m.id).collect::<Vec<_>>(),
        [&saved.id]
    );
    // Not the member's own, and the member's own do not pay for the organisation.
    let own = w
        .service
        .methods(&PayingAs::Citizen("accountant".into()))
        .await
        .unwrap();
    assert!(own.is_empty());
    let mine = w
        .service
        .add_method(&PayingAs::Citizen("owner".into()), card(), fresh, now)
        .await
        .unwrap();
    let with = |id: &MethodId| PayRequest {
        uins: vec![Uin::parse("uin", UIN).unwrap()],
        method: MethodRequest::Saved(id.as_str().into()),
    };
    let refused = w
        .service
        .pay(
            &w.member("owner"),
            "org-key-1",
            &with(&mine.id),
            "citizen",
            now,
        )
        .await;
    assert!(
        matches!(refused, Err(AppError::NotFound("payment method"))),
        "{refused:?}"
    );
    let paid = w
        .service
        .pay(
            &w.member("owner"),
            "org-key-2",
            &with(&saved.id),
            "citizen",
            now,
        )
        .await
        .unwrap();
    assert_eq!(
        paid.payment.method.saved_method_id.as_ref(),
        Some(&saved.id)
    );
    w.service
        .remove_method(&w.member("owner"), &saved.id, now)
        .await
        .unwrap();
    let actions: Vec<String> = w.audit().into_iter().map(|e| e.action).collect();
    assert_eq!(actions, ["method_added", "paid", "method_removed"]);
    let added = &w.audit()[0];
    assert_eq!(added.method_id.as_ref(), Some(&saved.id));
    assert_eq!(added.actor.as_ref().map(|a| a.as_str()), Some("accountant"));
}
