package gormstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/kiops/iam/adapters/gormstore"
	"github.com/kiops/iam/audit"
	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/internal/dbtest"
)

// legacyEventRow is the audit table as versions without the hash chain
// created it.
type legacyEventRow struct {
	ID         int64     `gorm:"column:id;primaryKey;autoIncrement"`
	OccurredAt time.Time `gorm:"column:occurred_at;not null"`
	ActorID    string    `gorm:"column:actor_id;size:64;not null"`
	Action     string    `gorm:"column:action;size:64;not null"`
	TargetID   string    `gorm:"column:target_id;size:64;not null"`
	OrgID      string    `gorm:"column:org_id;size:64;not null"`
	ClientAddr string    `gorm:"column:client_addr;not null"`
	Outcome    string    `gorm:"column:outcome;size:16;not null"`
	Reason     string    `gorm:"column:reason;not null"`
	Before     *string   `gorm:"column:before_change;type:text"`
	After      *string   `gorm:"column:after_change;type:text"`
}

func (legacyEventRow) TableName() string { return "iam_audit_events" }

func legacyRow(i int) legacyEventRow {
	before := fmt.Sprintf(`{"n": %d}`, i)
	return legacyEventRow{
		OccurredAt: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second),
		ActorID:    string(authz.NewUserID()), Action: string(audit.OrgRename), OrgID: string(authz.NewOrgID()),
		Outcome: "success", Before: &before,
	}
}

func verifyStore(t *testing.T, s *gormstore.Store, n int64) audit.VerifyResult {
	t.Helper()
	res, err := s.VerifyAudit(t.Context())
	if err != nil {
		t.Fatalf("VerifyAudit: %v", err)
	}
	if !res.OK() || res.Events != n {
		t.Fatalf("VerifyAudit = %d events, break %v; want %d intact events", res.Events, res.Break, n)
	}
	return res
}

// An existing log, written before the chain, gets the chain's columns and
// is chained by Open, oldest first; rows an older replica writes later
// are chained by the next Append.
func TestAuditChainMigratesExistingLog(t *testing.T) {
	eachKind(t, func(t *testing.T, kind dbtest.Kind) {
		db := dbtest.Open(t, kind)
		if err := db.AutoMigrate(&legacyEventRow{}); err != nil {
			t.Fatal(err)
		}
		const legacy = 1203 // more than one batch
		rows := make([]legacyEventRow, legacy)
		for i := range rows {
			rows[i] = legacyRow(i)
		}
		if err := db.CreateInBatches(rows, 200).Error; err != nil {
			t.Fatal(err)
		}
		s, err := gormstore.Open(t.Context(), db)
		if err != nil {
			t.Fatalf("Open on a log without the chain: %v", err)
		}
		res := verifyStore(t, s, legacy)
		// Open again: nothing to do, nothing changes.
		if s, err = gormstore.Open(t.Context(), db); err != nil {
			t.Fatalf("Open again: %v", err)
		}
		if again := verifyStore(t, s, legacy); again.Head != res.Head {
			t.Errorf("the head moved from %+v to %+v on a second Open", res.Head, again.Head)
		}
		// An older replica appends without hashes; the next Append chains
		// its rows first.
		if err := db.Create([]legacyEventRow{legacyRow(-1), legacyRow(-2)}).Error; err != nil {
			t.Fatal(err)
		}
		e, err := s.Audit().Append(t.Context(), audit.NewEvent(time.Now(), authz.NewUserID(), audit.SessionLogin))
		if err != nil {
			t.Fatal(err)
		}
		if e.ID != legacy+3 {
			t.Errorf("appended event %d, want %d", e.ID, legacy+3)
		}
		res = verifyStore(t, s, legacy+3)
		if res.Head.ID != e.ID || res.Head.Hash != e.Hash {
			t.Errorf("head %+v, want the appended event %d %s", res.Head, e.ID, e.Hash)
		}
		head, err := s.AuditHead(t.Context())
		if err != nil || head.ID != e.ID || head.Hash != e.Hash || head.At.IsZero() {
			t.Errorf("AuditHead = %+v, %v", head, err)
		}
	})
}

func TestAuditHeadAndChain(t *testing.T) {
	eachKind(t, func(t *testing.T, kind dbtest.Kind) {
		_, s := openStore(t, kind)
		head, err := s.AuditHead(t.Context())
		if err != nil || head.ID != 0 || head.Hash != audit.Genesis() {
			t.Fatalf("AuditHead of an empty log = %+v, %v", head, err)
		}
		verifyStore(t, s, 0)
		var appended []audit.Event
		for i := range 5 {
			e, err := s.Audit().Append(t.Context(), audit.NewEvent(time.Now().Add(time.Duration(-i)*time.Hour), authz.NewUserID(), audit.SessionLogin))
			if err != nil {
				t.Fatal(err)
			}
			appended = append(appended, e)
		}
		var got []audit.Event
		for e, err := range s.AuditChain(t.Context()) {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, e)
			if len(got) == 3 {
				break // stopping early closes the query
			}
		}
		for i, e := range got {
			if e.ID != appended[i].ID || e.Hash != appended[i].Hash || e.PrevHash != appended[i].PrevHash {
				t.Errorf("AuditChain event %d = %d %s, want %d %s", i, e.ID, e.Hash, appended[i].ID, appended[i].Hash)
			}
		}
		// The connection was released: the store still works.
		verifyStore(t, s, 5)
		cp, err := s.AuditHead(t.Context())
		if err != nil || cp.ID != appended[4].ID || cp.Hash != appended[4].Hash {
			t.Errorf("AuditHead = %+v, %v", cp, err)
		}
		if res, err := s.VerifyAuditCheckpoint(t.Context(), cp); err != nil || !res.OK() {
			t.Errorf("VerifyAuditCheckpoint = %+v, %v", res, err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := s.VerifyAudit(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("VerifyAudit with a cancelled context = %v", err)
		}
	})
}

// Concurrent writers, as several goroutines and as two Stores (replicas)
// on one database, some appending on their own and some inside larger
// transactions, never fork the chain. On PostgreSQL: 8 writers appending
// 1,000 events each.
func TestAuditChainConcurrentWriters(t *testing.T) {
	eachKind(t, func(t *testing.T, kind dbtest.Kind) {
		db, s1 := openStore(t, kind)
		s2, err := gormstore.Open(t.Context(), db)
		if err != nil {
			t.Fatal(err)
		}
		writers, each := 8, 100
		if kind == dbtest.Postgres && !testing.Short() {
			each = 1000
		}
		errs := make([]error, writers)
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				s := []*gormstore.Store{s1, s2}[w%2]
				for i := range each {
					e := audit.NewEvent(time.Now(), authz.NewUserID(), audit.MemberRoleChange)
					e.Org = authz.NewOrgID()
					var err error
					if i%2 == 0 {
						_, err = s.Audit().Append(t.Context(), e)
					} else {
						err = s.Transaction(t.Context(), func(tx *gormstore.Tx) error {
							if _, err := tx.BumpVersion(); err != nil {
								return err
							}
							_, err := tx.Audit().Append(t.Context(), e)
							return err
						})
					}
					if err != nil {
						errs[w] = fmt.Errorf("writer %d, event %d: %w", w, i, err)
						return
					}
				}
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		verifyStore(t, s2, int64(writers*each))
	})
}
