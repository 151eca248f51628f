package approval_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kiops/iam/approval"
	"github.com/kiops/iam/approval/approvaltest"
	"github.com/kiops/iam/authz"
)

// The whole flow of the Pending Approvals tab, on the in-memory store:
// sign-up, the pending count, a rejection, the user applying again, an
// approval. (The Service does the same inside its transactions, after
// asking authz who may review and decide.)
func Example() {
	ctx := context.Background()
	store := approvaltest.NewStore()
	org, ada, manager := authz.NewOrgID(), authz.NewUserID(), authz.NewUserID()
	now := time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC)

	// Ada signs up into the org's queue.
	req, _ := approval.NewRequest(org, ada, "ada@example.com", "Ada Lovelace", now)
	_ = store.CreateRequest(ctx, req)
	n, _ := store.PendingCount(ctx, org)
	fmt.Println("Pending Approvals:", n)

	// Signing up again while pending is a conflict.
	again, _ := approval.NewRequest(org, ada, "ada@example.com", "Ada Lovelace", now)
	err := store.CreateRequest(ctx, again)
	fmt.Println("second sign-up:", errors.Is(err, approval.ErrPending), errors.Is(err, authz.ErrConflict))

	// The Manager rejects it, with a reason.
	rejected, _ := req.Reject(manager, "Please sign up with your work address", now.Add(time.Hour))
	_ = store.DecideRequest(ctx, rejected.ID, rejected.Status, rejected.DecidedBy, rejected.Reason, rejected.DecidedAt)

	// Ada can apply again: a new request.
	req, _ = approval.NewRequest(org, ada, "ada@work.example", "Ada Lovelace", now.Add(2*time.Hour))
	_ = store.CreateRequest(ctx, req)

	// The tab, last 7 days, every status, newest first.
	list, _ := store.Requests(ctx, org, approval.Last7Days.Since(now.Add(3*time.Hour)), approval.AnyStatus)
	for _, r := range list {
		fmt.Printf("%s %s %q\n", r.Email, r.Status, r.Reason)
	}

	// The Manager approves the new one; the Service then makes Ada a
	// Member of the org.
	approved, _ := req.Approve(manager, now.Add(3*time.Hour))
	err = store.DecideRequest(ctx, approved.ID, approved.Status, approved.DecidedBy, approved.Reason, approved.DecidedAt)
	n, _ = store.PendingCount(ctx, org)
	fmt.Println("approved:", err, "pending:", n)
	// Output:
	// Pending Approvals: 1
	// second sign-up: true true
	// ada@work.example pending ""
	// ada@example.com rejected "Please sign up with your work address"
	// approved: <nil> pending: 0
}

func ExampleRequest_Approve() {
	org, ada, manager, other := authz.NewOrgID(), authz.NewUserID(), authz.NewUserID(), authz.NewUserID()
	now := time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC)
	req, _ := approval.NewRequest(org, ada, "ada@example.com", "Ada Lovelace", now)

	approved, err := req.Approve(manager, now.Add(time.Minute))
	fmt.Println(approved.Status, approved.DecidedBy == manager, err)

	// A request is decided once.
	_, err = approved.Reject(other, "", now.Add(2*time.Minute))
	fmt.Println(err)
	fmt.Println(errors.Is(err, authz.ErrConflict))

	// Nobody decides their own request.
	_, err = req.Approve(ada, now)
	fmt.Println(errors.Is(err, authz.ErrSelfApproval))
	// Output:
	// approved true <nil>
	// approval: the registration request was already decided (approved)
	// true
	// true
}

func ExampleParsePeriod() {
	now := time.Date(2025, 6, 30, 12, 0, 0, 0, time.UTC)
	for _, s := range []string{"7d", "30d", "all", "7 days"} {
		p, err := approval.ParsePeriod(s)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Printf("%s: since %v\n", p, p.Since(now).Format(time.DateTime))
	}
	// Output:
	// 7d: since 2025-06-23 12:00:00
	// 30d: since 2025-05-31 12:00:00
	// all: since 0001-01-01 00:00:00
	// authz: invalid request period "7 days": want 7d, 30d or all
}

func ExampleParseRequestID() {
	id := approval.NewRequestID()
	got, err := approval.ParseRequestID(id.String())
	fmt.Println(got == id, err)
	_, err = approval.ParseRequestID("REQ_1")
	fmt.Println(err)
	// Output:
	// true <nil>
	// authz: invalid request id "REQ_1": not an id this module issued
}
