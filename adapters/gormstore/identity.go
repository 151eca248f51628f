package gormstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/kiops/iam/authz"
	"github.com/kiops/iam/identity"
)

// lockClassIdentity is the advisory lock class (see lockClassMigrate) of
// identity writes on PostgreSQL.
const lockClassIdentity = "1767992580" // "iam" 0x69616d04

// orgRow is an organization in the table iam_orgs.
type orgRow struct {
	ID        string    `gorm:"column:id;primaryKey;size:64"`
	Name      string    `gorm:"column:name;not null"`
	CreatedAt time.Time `gorm:"column:created_at;not null;autoCreateTime:false"`
}

func (orgRow) TableName() string { return "iam_orgs" }

// userRow is an account in the table iam_users. A deleted account keeps
// its row with deleted_at set (and its password hash cleared), so that
// its id is never issued again and history can still name it. The
// partial unique index idx_iam_users_email_live makes emails unique among
// live accounts only, so a deleted account's email can register again.
type userRow struct {
	ID           string     `gorm:"column:id;primaryKey;size:64"`
	Email        string     `gorm:"column:email;size:254;not null;uniqueIndex:idx_iam_users_email_live,where:deleted_at IS NULL"`
	Name         string     `gorm:"column:name;not null"`
	PasswordHash string     `gorm:"column:password_hash;not null"`
	Status       string     `gorm:"column:status;size:16;not null"`
	CreatedAt    time.Time  `gorm:"column:created_at;not null;autoCreateTime:false"`
	UpdatedAt    time.Time  `gorm:"column:updated_at;not null;autoUpdateTime:false"`
	DeletedAt    *time.Time `gorm:"column:deleted_at"`
}

func (userRow) TableName() string { return "iam_users" }

// sessionRow is a session in the table iam_sessions: the token's SHA-256
// as 64 hex digits, never the token.
type sessionRow struct {
	Hash      string    `gorm:"column:hash;primaryKey;size:64"`
	UserID    string    `gorm:"column:user_id;size:64;not null;index:idx_iam_sessions_user"`
	CreatedAt time.Time `gorm:"column:created_at;not null;autoCreateTime:false"`
	ExpiresAt time.Time `gorm:"column:expires_at;not null;index:idx_iam_sessions_expires"`
}

func (sessionRow) TableName() string { return "iam_sessions" }

// resetRow is a password-reset token in the table iam_reset_tokens: the
// token's SHA-256, and when it was redeemed (NULL while it is unused).
type resetRow struct {
	Hash      string     `gorm:"column:hash;primaryKey;size:64"`
	UserID    string     `gorm:"column:user_id;size:64;not null;index:idx_iam_reset_tokens_user"`
	CreatedAt time.Time  `gorm:"column:created_at;not null;autoCreateTime:false"`
	ExpiresAt time.Time  `gorm:"column:expires_at;not null;index:idx_iam_reset_tokens_expires"`
	UsedAt    *time.Time `gorm:"column:used_at"`
}

func (resetRow) TableName() string { return "iam_reset_tokens" }

func migrateIdentity(tx *gorm.DB) error {
	for _, m := range []interface{ TableName() string }{&orgRow{}, &userRow{}, &sessionRow{}, &resetRow{}} {
		if err := tx.AutoMigrate(m); err != nil {
			return fmt.Errorf("migrate %s: %w", m.TableName(), err)
		}
	}
	return nil
}

func (row orgRow) org() identity.Org {
	return identity.Org{ID: authz.OrgID(row.ID), Name: row.Name, CreatedAt: row.CreatedAt}
}

func (row userRow) user() (identity.User, error) {
	st, err := identity.ParseStatus(row.Status)
	if err != nil {
		return identity.User{}, corrupt(row.TableName(), row.ID, fmt.Sprintf("status %q", row.Status))
	}
	return identity.User{
		ID:           authz.UserID(row.ID),
		Email:        row.Email,
		Name:         row.Name,
		PasswordHash: row.PasswordHash,
		Status:       st,
		CreatedAt:    row.CreatedAt,
		UpdatedAt:    row.UpdatedAt,
	}, nil
}

func (row sessionRow) session() (identity.Session, error) {
	h, err := identity.ParseTokenHash(row.Hash)
	if err != nil {
		return identity.Session{}, corrupt(row.TableName(), "", "a hash that is not 64 hex digits")
	}
	return identity.Session{Hash: h, User: authz.UserID(row.UserID), CreatedAt: row.CreatedAt, ExpiresAt: row.ExpiresAt}, nil
}

func (row resetRow) token() (identity.ResetToken, error) {
	h, err := identity.ParseTokenHash(row.Hash)
	if err != nil {
		return identity.ResetToken{}, corrupt(row.TableName(), "", "a hash that is not 64 hex digits")
	}
	return identity.ResetToken{Hash: h, User: authz.UserID(row.UserID), CreatedAt: row.CreatedAt, ExpiresAt: row.ExpiresAt}, nil
}

// identityStore implements identity.Store over the tables iam_orgs,
// iam_users, iam_sessions and iam_reset_tokens, in a Tx or on the Store's
// database.
type identityStore struct{ scope }

var _ identity.Store = (*identityStore)(nil)

// Identity returns orgs, users, sessions and reset tokens as an
// identity.Store bound to this transaction: what it writes commits or
// rolls back with the Tx, and it reads the Tx's own writes. Like the Tx,
// it is not for concurrent use and is dead once Transaction's function
// returns (every method then fails). Times are stored in UTC, truncated
// to whole microseconds.
//
// A method that fails in the database spoils the Tx, as a failed policy
// write does: the transaction rolls back even if the function returns
// nil. Errors of the identity.Store contract (authz.ErrInvalid,
// authz.ErrNotFound, authz.ErrConflict) are found with statements that
// succeed and write nothing, and leave the Tx usable. Beyond the
// contract, a method that deletes "all of" an owner's rows refuses an
// owner id that is not canonical with authz.ErrInvalid, and DeleteUser,
// UseResetToken and DeleteExpired refuse the zero time.
//
// Concurrency: the unique index on live emails, the conditional update of
// UseResetToken and, on PostgreSQL, an advisory lock per user taken by
// CreateResetToken and held until the transaction ends keep the
// identity.Store guarantees between concurrent transactions; the row
// locks of the writes are held until the transaction ends.
func (t *Tx) Identity() identity.Store { return &identityStore{scope{tx: t}} }

// Identity returns orgs, users, sessions and reset tokens as an
// identity.Store on the Store's database, each method in a transaction of
// its own: for reads outside a management operation (resolving a
// session on every request, say), housekeeping (DeleteExpired), and tests.
// It is safe for concurrent use and keeps the identity.Store guarantees
// under concurrency, across goroutines and replicas. Errors are those of
// Tx.Identity.
func (s *Store) Identity() identity.Store { return &identityStore{scope{db: s.db}} }

// insertNew inserts row with ON CONFLICT DO NOTHING and reports whether
// it went in: a clash with a primary key or unique index inserts nothing,
// without failing the statement (which on PostgreSQL would abort the
// transaction).
func insertNew(db *gorm.DB, row any) (bool, error) {
	res := db.Clauses(clause.OnConflict{DoNothing: true}).Create(row)
	if res.Error != nil {
		return false, failed(res.Error)
	}
	return res.RowsAffected == 1, nil
}

// CreateOrg implements identity.Store.
func (s *identityStore) CreateOrg(ctx context.Context, o identity.Org) error {
	const op = "create org"
	if err := o.Validate(); err != nil {
		return wrap(op, err)
	}
	row := orgRow{ID: string(o.ID), Name: o.Name, CreatedAt: dbTime(o.CreatedAt)}
	return s.write(ctx, op, func(db *gorm.DB) error {
		ok, err := insertNew(db, &row)
		if err == nil && !ok {
			err = conflict("org " + row.ID + " exists")
		}
		return err
	})
}

// Org implements identity.Store.
func (s *identityStore) Org(ctx context.Context, id authz.OrgID) (identity.Org, error) {
	const op = "org"
	if !id.Valid() {
		return identity.Org{}, wrap(op, notFound(fmt.Sprintf("org %q", string(id))))
	}
	var rows []orgRow
	err := s.read(ctx, op, func(db *gorm.DB) error {
		if err := db.Where("id = ?", string(id)).Limit(1).Find(&rows).Error; err != nil {
			return failed(err)
		}
		if len(rows) == 0 {
			return notFound("org " + string(id))
		}
		return nil
	})
	if err != nil {
		return identity.Org{}, err
	}
	return rows[0].org(), nil
}

// Orgs implements identity.Store. The order is byte order of the names,
// then of the ids, whatever the database's collation.
func (s *identityStore) Orgs(ctx context.Context) ([]identity.Org, error) {
	var rows []orgRow
	err := s.read(ctx, "orgs", func(db *gorm.DB) error {
		return failed(db.Find(&rows).Error)
	})
	if err != nil {
		return nil, err
	}
	out := make([]identity.Org, len(rows))
	for i, row := range rows {
		out[i] = row.org()
	}
	slices.SortFunc(out, func(a, b identity.Org) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// RenameOrg implements identity.Store.
func (s *identityStore) RenameOrg(ctx context.Context, id authz.OrgID, name string) error {
	const op = "rename org"
	if n, err := identity.CleanOrgName(name); err != nil {
		return wrap(op, err)
	} else if n != name {
		return wrap(op, &authz.InvalidError{Field: "org name", Value: name, Reason: "not in clean form (see identity.CleanOrgName)"})
	}
	if !id.Valid() {
		return wrap(op, notFound(fmt.Sprintf("org %q", string(id))))
	}
	return s.write(ctx, op, func(db *gorm.DB) error {
		// RowsAffected counts the rows matched (PostgreSQL, SQLite), also
		// when the name is already the one asked for.
		res := db.Model(&orgRow{}).Where("id = ?", string(id)).Update("name", name)
		if res.Error != nil {
			return failed(res.Error)
		}
		if res.RowsAffected == 0 {
			return notFound("org " + string(id))
		}
		return nil
	})
}

// DeleteOrg implements identity.Store.
func (s *identityStore) DeleteOrg(ctx context.Context, id authz.OrgID) error {
	const op = "delete org"
	if !id.Valid() {
		return wrap(op, notFound(fmt.Sprintf("org %q", string(id))))
	}
	return s.write(ctx, op, func(db *gorm.DB) error {
		res := db.Where("id = ?", string(id)).Delete(&orgRow{})
		if res.Error != nil {
			return failed(res.Error)
		}
		if res.RowsAffected == 0 {
			return notFound("org " + string(id))
		}
		return nil
	})
}

// CreateUser implements identity.Store: one INSERT … ON CONFLICT DO
// NOTHING, so that the primary key (over every id ever stored) and the
// unique index on live emails decide between concurrent creations
// without a failed statement.
func (s *identityStore) CreateUser(ctx context.Context, u identity.User) error {
	const op = "create user"
	if err := u.Validate(); err != nil {
		return wrap(op, err)
	}
	row := userRow{
		ID:           string(u.ID),
		Email:        u.Email,
		Name:         u.Name,
		PasswordHash: u.PasswordHash,
		Status:       u.Status.String(),
		CreatedAt:    dbTime(u.CreatedAt),
		UpdatedAt:    dbTime(u.UpdatedAt),
	}
	return s.write(ctx, op, func(db *gorm.DB) error {
		ok, err := insertNew(db, &row)
		if err == nil && !ok {
			err = conflict("the user id was issued before, or a user with this email exists")
		}
		return err
	})
}

// liveUser reads the live user that cond (a constant condition of this
// file) selects with arg bound.
func (s *identityStore) liveUser(ctx context.Context, op, cond, arg string) (identity.User, error) {
	var u identity.User
	err := s.read(ctx, op, func(db *gorm.DB) error {
		var rows []userRow
		if err := db.Where(cond, arg).Where("deleted_at IS NULL").Limit(1).Find(&rows).Error; err != nil {
			return failed(err)
		}
		if len(rows) == 0 {
			return notFound("no such user")
		}
		var err error
		u, err = rows[0].user()
		return err
	})
	return u, err
}

// User implements identity.Store.
func (s *identityStore) User(ctx context.Context, id authz.UserID) (identity.User, error) {
	const op = "user"
	if !id.Valid() {
		return identity.User{}, wrap(op, notFound(fmt.Sprintf("user %q", string(id))))
	}
	return s.liveUser(ctx, op, "id = ?", string(id))
}

// UserByEmail implements identity.Store. The email is compared byte for
// byte, as a bound parameter.
func (s *identityStore) UserByEmail(ctx context.Context, email string) (identity.User, error) {
	return s.liveUser(ctx, "user by email", "email = ?", email)
}

// Users implements identity.Store. The order is byte order of the emails,
// whatever the database's collation.
func (s *identityStore) Users(ctx context.Context) ([]identity.User, error) {
	var rows []userRow
	err := s.read(ctx, "users", func(db *gorm.DB) error {
		return failed(db.Where("deleted_at IS NULL").Find(&rows).Error)
	})
	if err != nil {
		return nil, err
	}
	out := make([]identity.User, 0, len(rows))
	for _, row := range rows {
		u, err := row.user()
		if err != nil {
			return nil, wrap("users", err)
		}
		out = append(out, u)
	}
	slices.SortFunc(out, func(a, b identity.User) int { return cmp.Compare(a.Email, b.Email) })
	return out, nil
}

// UpdateUser implements identity.Store: one UPDATE of the columns up
// sets, so a concurrent change to another column is never overwritten.
func (s *identityStore) UpdateUser(ctx context.Context, id authz.UserID, up identity.UserUpdate) error {
	const op = "update user"
	if err := up.Validate(); err != nil {
		return wrap(op, err)
	}
	if !id.Valid() {
		return wrap(op, notFound(fmt.Sprintf("user %q", string(id))))
	}
	cols := map[string]any{"updated_at": dbTime(up.At)}
	if up.Name != "" {
		cols["name"] = up.Name
	}
	if up.PasswordHash != "" {
		cols["password_hash"] = up.PasswordHash
	}
	if up.Status != 0 {
		cols["status"] = up.Status.String()
	}
	return s.write(ctx, op, func(db *gorm.DB) error {
		res := db.Model(&userRow{}).Where("id = ? AND deleted_at IS NULL", string(id)).Updates(cols)
		if res.Error != nil {
			return failed(res.Error)
		}
		if res.RowsAffected == 0 {
			return notFound("user " + string(id))
		}
		return nil
	})
}

// DeleteUser implements identity.Store. The row stays, marked deleted at
// at, with its password hash cleared: a deleted account can never log in
// again, and its hash is no longer kept.
func (s *identityStore) DeleteUser(ctx context.Context, id authz.UserID, at time.Time) error {
	const op = "delete user"
	if at.IsZero() {
		return wrap(op, &authz.InvalidError{Field: "deletion time", Value: "", Reason: "missing"})
	}
	if !id.Valid() {
		return wrap(op, notFound(fmt.Sprintf("user %q", string(id))))
	}
	return s.write(ctx, op, func(db *gorm.DB) error {
		res := db.Model(&userRow{}).
			Where("id = ? AND deleted_at IS NULL", string(id)).
			Updates(map[string]any{"deleted_at": dbTime(at), "password_hash": ""})
		if res.Error != nil {
			return failed(res.Error)
		}
		if res.RowsAffected == 0 {
			return notFound("user " + string(id))
		}
		return nil
	})
}

// CreateSession implements identity.Store.
func (s *identityStore) CreateSession(ctx context.Context, se identity.Session) error {
	const op = "create session"
	if err := se.Validate(); err != nil {
		return wrap(op, err)
	}
	row := sessionRow{Hash: se.Hash.String(), UserID: string(se.User), CreatedAt: dbTime(se.CreatedAt), ExpiresAt: dbTime(se.ExpiresAt)}
	return s.write(ctx, op, func(db *gorm.DB) error {
		ok, err := insertNew(db, &row)
		if err == nil && !ok {
			err = conflict("session exists")
		}
		return err
	})
}

// Session implements identity.Store.
func (s *identityStore) Session(ctx context.Context, h identity.TokenHash) (identity.Session, error) {
	const op = "session"
	var se identity.Session
	err := s.read(ctx, op, func(db *gorm.DB) error {
		var rows []sessionRow
		if err := db.Where("hash = ?", h.String()).Limit(1).Find(&rows).Error; err != nil {
			return failed(err)
		}
		if len(rows) == 0 {
			return notFound("no such session")
		}
		var err error
		se, err = rows[0].session()
		return err
	})
	return se, err
}

// DeleteSession implements identity.Store.
func (s *identityStore) DeleteSession(ctx context.Context, h identity.TokenHash) error {
	const op = "delete session"
	return s.write(ctx, op, func(db *gorm.DB) error {
		res := db.Where("hash = ?", h.String()).Delete(&sessionRow{})
		if res.Error != nil {
			return failed(res.Error)
		}
		if res.RowsAffected == 0 {
			return notFound("no such session")
		}
		return nil
	})
}

// DeleteSessions implements identity.Store. A user id that is not
// canonical is an *authz.InvalidError.
func (s *identityStore) DeleteSessions(ctx context.Context, user authz.UserID) error {
	_, err := authz.ParseUserID(string(user))
	return s.deleteOwned(ctx, "delete sessions", "user_id", string(user), err, &sessionRow{})
}

// CreateResetToken implements identity.Store. It inserts the token first
// (ON CONFLICT DO NOTHING: a stored hash writes nothing) and then deletes
// the user's other tokens. On PostgreSQL it first takes the user's
// advisory lock, held until the transaction ends, so that of two
// concurrent calls for one user the second waits, then deletes the
// first's token: only the newest works, under concurrency too.
func (s *identityStore) CreateResetToken(ctx context.Context, t identity.ResetToken) error {
	const op = "create reset token"
	if err := t.Validate(); err != nil {
		return wrap(op, err)
	}
	row := resetRow{Hash: t.Hash.String(), UserID: string(t.User), CreatedAt: dbTime(t.CreatedAt), ExpiresAt: dbTime(t.ExpiresAt)}
	return s.write(ctx, op, func(db *gorm.DB) error {
		if isPostgres(db) {
			if err := db.Exec("SELECT pg_advisory_xact_lock("+lockClassIdentity+", hashtext(?))", "reset:"+row.UserID).Error; err != nil {
				return failed(fmt.Errorf("lock: %w", err))
			}
		}
		ok, err := insertNew(db, &row)
		if err != nil {
			return err
		}
		if !ok {
			return conflict("reset token exists")
		}
		return failed(db.Where("user_id = ? AND hash <> ?", row.UserID, row.Hash).Delete(&resetRow{}).Error)
	})
}

// UseResetToken implements identity.Store with one conditional UPDATE
// (… WHERE hash = ? AND used_at IS NULL AND expires_at > ?) whose count of
// changed rows says whether this redemption won; the token is then read
// back in the same transaction.
func (s *identityStore) UseResetToken(ctx context.Context, h identity.TokenHash, now time.Time) (identity.ResetToken, error) {
	const op = "use reset token"
	if now.IsZero() {
		return identity.ResetToken{}, wrap(op, &authz.InvalidError{Field: "time", Value: "", Reason: "missing"})
	}
	var tok identity.ResetToken
	err := s.write(ctx, op, func(db *gorm.DB) error {
		res := db.Model(&resetRow{}).
			Where("hash = ? AND used_at IS NULL AND expires_at > ?", h.String(), dbTime(now)).
			Update("used_at", dbTime(now))
		if res.Error != nil {
			return failed(res.Error)
		}
		if res.RowsAffected == 0 {
			return notFound("no usable reset token")
		}
		var rows []resetRow
		if err := db.Where("hash = ?", h.String()).Limit(1).Find(&rows).Error; err != nil {
			return failed(err)
		}
		if len(rows) == 0 {
			return failed(fmt.Errorf("reset token vanished after it was redeemed"))
		}
		var err error
		tok, err = rows[0].token()
		return err
	})
	return tok, err
}

// DeleteResetTokens implements identity.Store. A user id that is not
// canonical is an *authz.InvalidError.
func (s *identityStore) DeleteResetTokens(ctx context.Context, user authz.UserID) error {
	_, err := authz.ParseUserID(string(user))
	return s.deleteOwned(ctx, "delete reset tokens", "user_id", string(user), err, &resetRow{})
}

// DeleteExpired implements identity.Store.
func (s *identityStore) DeleteExpired(ctx context.Context, now time.Time) error {
	const op = "delete expired"
	if now.IsZero() {
		return wrap(op, &authz.InvalidError{Field: "time", Value: "", Reason: "missing"})
	}
	at := dbTime(now) // expires_at <= now exactly when expires_at <= dbTime(now)
	return s.write(ctx, op, func(db *gorm.DB) error {
		if err := db.Where("expires_at <= ?", at).Delete(&sessionRow{}).Error; err != nil {
			return failed(err)
		}
		return failed(db.Where("expires_at <= ? OR used_at IS NOT NULL", at).Delete(&resetRow{}).Error)
	})
}
