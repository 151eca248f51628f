package gormstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/kiops/iam/approval"
	"github.com/kiops/iam/authz"
)

// requestRow is a registration request as the table
// iam_registration_requests holds it. Status is stored by name; DecidedAt
// is NULL and DecidedBy and Reason are empty while the request is pending.
//
// The partial unique index idx_iam_registration_requests_pending admits one
// pending request per person and org, and leaves decided ones out, so a
// rejected person may apply again. The index on (org_id, created_at)
// serves the org's queue and its pending count.
type requestRow struct {
	ID        string     `gorm:"column:id;primaryKey;size:64"`
	OrgID     string     `gorm:"column:org_id;size:64;not null;index:idx_iam_registration_requests_org,priority:1;uniqueIndex:idx_iam_registration_requests_pending,priority:2"`
	UserID    string     `gorm:"column:user_id;size:64;not null;index:idx_iam_registration_requests_user;uniqueIndex:idx_iam_registration_requests_pending,priority:1,where:status = 'pending'"`
	Email     string     `gorm:"column:email;not null"`
	Name      string     `gorm:"column:name;not null"`
	Status    string     `gorm:"column:status;size:16;not null"`
	CreatedAt time.Time  `gorm:"column:created_at;not null;autoCreateTime:false;index:idx_iam_registration_requests_org,priority:2"`
	DecidedAt *time.Time `gorm:"column:decided_at"`
	DecidedBy string     `gorm:"column:decided_by;size:64;not null"`
	Reason    string     `gorm:"column:reason;not null"`
}

func (requestRow) TableName() string { return "iam_registration_requests" }

func migrateApproval(tx *gorm.DB) error {
	if err := tx.AutoMigrate(&requestRow{}); err != nil {
		return fmt.Errorf("migrate %s: %w", requestRow{}.TableName(), err)
	}
	return nil
}

func toRequestRow(r approval.Request) requestRow {
	return requestRow{
		ID:        string(r.ID),
		OrgID:     string(r.Org),
		UserID:    string(r.User),
		Email:     r.Email,
		Name:      r.Name,
		Status:    r.Status.String(),
		CreatedAt: dbTime(r.CreatedAt),
		DecidedAt: nullTime(r.DecidedAt),
		DecidedBy: string(r.DecidedBy),
		Reason:    r.Reason,
	}
}

func (row requestRow) request() (approval.Request, error) {
	st, err := approval.ParseStatus(row.Status)
	if err != nil {
		return approval.Request{}, corrupt(row.TableName(), row.ID, fmt.Sprintf("status %q", row.Status))
	}
	return approval.Request{
		ID:        approval.RequestID(row.ID),
		Org:       authz.OrgID(row.OrgID),
		User:      authz.UserID(row.UserID),
		Email:     row.Email,
		Name:      row.Name,
		Status:    st,
		CreatedAt: row.CreatedAt,
		DecidedAt: fromNullTime(row.DecidedAt),
		DecidedBy: authz.UserID(row.DecidedBy),
		Reason:    row.Reason,
	}, nil
}

// approvalStore implements approval.Store over the table
// iam_registration_requests, in a Tx or on the Store's database.
type approvalStore struct{ scope }

var _ approval.Store = (*approvalStore)(nil)

// Approvals returns the registration requests as an approval.Store bound
// to this transaction: what it writes commits or rolls back with the Tx,
// and it reads the Tx's own writes. Like the Tx, it is not for concurrent
// use and is dead once Transaction's function returns (every method then
// fails).
//
// A method that fails in the database spoils the Tx, as a failed policy
// write does: the transaction rolls back even if the function returns
// nil. Errors of the approval.Store contract (authz.ErrInvalid,
// authz.ErrNotFound, approval.ErrPending, approval.ErrDecided and other
// authz.ErrConflict) are found with statements that succeed and write
// nothing, and leave the Tx usable. Beyond the contract,
// DeleteUserRequests and DeleteOrgRequests refuse an id that is not
// canonical with authz.ErrInvalid. Times are stored in UTC, truncated to
// whole microseconds.
//
// DecideRequest's conditional update locks the request's row until the
// transaction ends (on PostgreSQL; SQLite locks the database), so of two
// transactions deciding one request the second waits and then gets
// approval.ErrDecided.
func (t *Tx) Approvals() approval.Store { return &approvalStore{scope{tx: t}} }

// Approvals returns the registration requests as an approval.Store on the
// Store's database, each method in a transaction of its own: for reads
// outside a management operation, and for tests. It is safe for
// concurrent use, and keeps the approval.Store guarantees under
// concurrency (one pending request per person and org, one decision per
// request) across goroutines and replicas. Errors are those of
// Tx.Approvals.
func (s *Store) Approvals() approval.Store { return &approvalStore{scope{db: s.db}} }

// CreateRequest implements approval.Store: one INSERT … ON CONFLICT DO
// NOTHING, so that the partial unique index decides between concurrent
// requests of one person for one org without a failed statement.
func (s *approvalStore) CreateRequest(ctx context.Context, r approval.Request) error {
	const op = "create request"
	if err := r.Validate(); err != nil {
		return wrap(op, err)
	}
	if r.Status != approval.Pending {
		return wrap(op, &authz.InvalidError{Field: "request status", Value: r.Status.String(), Reason: "a new request is pending"})
	}
	row := toRequestRow(r)
	return s.write(ctx, op, func(db *gorm.DB) error {
		res := db.Clauses(clause.OnConflict{DoNothing: true}).Create(&row)
		if res.Error != nil {
			return failed(res.Error)
		}
		if res.RowsAffected == 1 {
			return nil
		}
		// Nothing inserted: the id is taken, or the person has a pending
		// request in the org (committed, or committed while we waited).
		var n int64
		if err := db.Model(&requestRow{}).Where("id = ?", row.ID).Count(&n).Error; err != nil {
			return failed(err)
		}
		if n > 0 {
			return conflict("request id " + row.ID + " exists")
		}
		return approval.ErrPending
	})
}

// Request implements approval.Store.
func (s *approvalStore) Request(ctx context.Context, id approval.RequestID) (approval.Request, error) {
	const op = "request"
	if !id.Valid() {
		return approval.Request{}, wrap(op, notFound(fmt.Sprintf("request %q", string(id))))
	}
	var r approval.Request
	err := s.read(ctx, op, func(db *gorm.DB) error {
		var rows []requestRow
		if err := db.Where("id = ?", string(id)).Limit(1).Find(&rows).Error; err != nil {
			return failed(err)
		}
		if len(rows) == 0 {
			return notFound("request " + string(id))
		}
		var err error
		r, err = rows[0].request()
		return err
	})
	return r, err
}

// Requests implements approval.Store. The conditions are constant strings
// with bound parameters; the org's queue is selected with an explicit
// org_id condition, never a struct condition.
func (s *approvalStore) Requests(ctx context.Context, org authz.OrgID, since time.Time, status approval.Status) ([]approval.Request, error) {
	const op = "requests"
	if status != approval.AnyStatus && !status.Valid() {
		return nil, wrap(op, &authz.InvalidError{Field: "request status", Value: status.String(), Reason: "want any, pending, approved or rejected"})
	}
	if !org.Valid() {
		return nil, nil // no stored request has it
	}
	var out []approval.Request
	err := s.read(ctx, op, func(db *gorm.DB) error {
		q := db.Where("org_id = ?", string(org))
		if !since.IsZero() {
			q = q.Where("created_at >= ?", dbTimeCeil(since))
		}
		if status != approval.AnyStatus {
			q = q.Where("status = ?", status.String())
		}
		var rows []requestRow
		if err := q.Order("created_at DESC, id DESC").Find(&rows).Error; err != nil {
			return failed(err)
		}
		out = make([]approval.Request, 0, len(rows))
		for _, row := range rows {
			r, err := row.request()
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// The database ordered them already; sorting again pins the order of
	// equal times to the byte order of the ids whatever the column's
	// collation.
	slices.SortStableFunc(out, func(a, b approval.Request) int {
		return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), cmp.Compare(b.ID, a.ID))
	})
	return out, nil
}

// PendingCount implements approval.Store.
func (s *approvalStore) PendingCount(ctx context.Context, org authz.OrgID) (int, error) {
	const op = "pending count"
	if !org.Valid() {
		return 0, nil
	}
	var n int64
	err := s.read(ctx, op, func(db *gorm.DB) error {
		return failed(db.Model(&requestRow{}).Where("org_id = ? AND status = ?", string(org), approval.Pending.String()).Count(&n).Error)
	})
	return int(n), err
}

// DecideRequest implements approval.Store with one conditional UPDATE
// (WHERE id = ? AND status = 'pending') whose count of changed rows says
// whether this decision won.
func (s *approvalStore) DecideRequest(ctx context.Context, id approval.RequestID, to approval.Status, by authz.UserID, reason string, at time.Time) error {
	const op = "decide request"
	if err := approval.ValidateDecision(to, by, reason, at); err != nil {
		return wrap(op, err)
	}
	if !id.Valid() {
		return wrap(op, notFound(fmt.Sprintf("request %q", string(id))))
	}
	return s.write(ctx, op, func(db *gorm.DB) error {
		res := db.Model(&requestRow{}).
			Where("id = ? AND status = ?", string(id), approval.Pending.String()).
			Updates(map[string]any{
				"status":     to.String(),
				"decided_at": dbTime(at),
				"decided_by": string(by),
				"reason":     reason,
			})
		if res.Error != nil {
			return failed(res.Error)
		}
		if res.RowsAffected == 1 {
			return nil
		}
		var rows []requestRow
		if err := db.Select("id", "status").Where("id = ?", string(id)).Limit(1).Find(&rows).Error; err != nil {
			return failed(err)
		}
		if len(rows) == 0 {
			return notFound("request " + string(id))
		}
		return fmt.Errorf("%w (%s)", approval.ErrDecided, rows[0].Status)
	})
}

// DeleteUserRequests implements approval.Store. A user id that is not
// canonical is an *authz.InvalidError: no request can hold it, so it can
// only be a caller's mistake.
func (s *approvalStore) DeleteUserRequests(ctx context.Context, user authz.UserID) error {
	_, err := authz.ParseUserID(string(user))
	return s.deleteOwned(ctx, "delete user requests", "user_id", string(user), err, &requestRow{})
}

// DeleteOrgRequests implements approval.Store. An org id that is not
// canonical is an *authz.InvalidError.
func (s *approvalStore) DeleteOrgRequests(ctx context.Context, org authz.OrgID) error {
	_, err := authz.ParseOrgID(string(org))
	return s.deleteOwned(ctx, "delete org requests", "org_id", string(org), err, &requestRow{})
}
