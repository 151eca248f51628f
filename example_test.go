package iam_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"slices"
	"strings"

	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	iam "github.com/kiops/iam"
	"github.com/kiops/iam/approval"
	"github.com/kiops/iam/authz"
)

// openExampleDB opens a private in-memory SQLite database; the embedded
// default for a real host is a file (see New).
func openExampleDB(name string) *gorm.DB {
	db, err := gorm.Open(sqlite.Open("file:"+name+"?mode=memory&cache=shared&_busy_timeout=5000"), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		log.Fatal(err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		log.Fatal(err)
	}
	sqlDB.SetMaxOpenConns(1) // one connection keeps the memory database alive
	return db
}

func ExampleNew() {
	ctx := context.Background()
	svc, err := iam.New(ctx, openExampleDB("example_new"))
	if err != nil {
		log.Fatal(err)
	}
	defer svc.Close()

	// The first start of a platform creates its first PlatformAdmin.
	admin, err := svc.Bootstrap(ctx, "ada@example.com", "Ada", "correct horse battery staple")
	if err != nil {
		log.Fatal(err)
	}
	_, err = svc.Bootstrap(ctx, "eve@example.com", "Eve", "another horse battery staple")
	fmt.Println("second bootstrap refused:", errors.Is(err, iam.ErrConflict))
	fmt.Println("operations screens:", svc.CheckOperations(ctx, admin) == nil)
	// Output:
	// second bootstrap refused: true
	// operations screens: true
}

// A person signs up, a Manager approves them from the Pending Approvals
// tab, grants categories on the Permission Management page, and the
// feature pages check them.
func ExampleService_SignUp() {
	ctx := context.Background()
	svc, err := iam.New(ctx, openExampleDB("example_signup"))
	if err != nil {
		log.Fatal(err)
	}
	defer svc.Close()
	admin, _ := svc.Bootstrap(ctx, "ada@example.com", "Ada", "correct horse battery staple")
	seoul, _ := svc.CreateOrg(ctx, admin, "Seoul DC")

	if err := svc.SignUp(ctx, "joon@example.com", "Joon", "purple monkey dishwasher", seoul.ID); err != nil {
		log.Fatal(err)
	}
	n, _ := svc.PendingCount(ctx, admin, seoul.ID)
	fmt.Println("pending:", n)
	queue, _ := svc.Registrations(ctx, admin, seoul.ID, approval.Last7Days, approval.Pending)
	joon := queue[0].User
	if err := svc.Approve(ctx, admin, queue[0].ID); err != nil {
		log.Fatal(err)
	}

	err = svc.Authorize(ctx, joon, seoul.ID, authz.Infra)
	var ipe *authz.InsufficientPermissionsError
	if errors.As(err, &ipe) {
		fmt.Println("Insufficient permissions; ask your Manager for:", ipe.Missing)
	}
	if err := svc.SetCategories(ctx, admin, joon, seoul.ID, authz.NewCategorySet(authz.Infra, authz.VPN)); err != nil {
		log.Fatal(err)
	}
	fmt.Println("infra now:", svc.Check(ctx, joon, seoul.ID, authz.Infra).Allowed)
	// Output:
	// pending: 1
	// Insufficient permissions; ask your Manager for: infra
	// infra now: true
}

// A Manager cannot change their own role, nor make anyone a PlatformAdmin;
// each refusal is a typed error and a denied audit event.
func ExampleService_ChangeRole() {
	ctx := context.Background()
	svc, err := iam.New(ctx, openExampleDB("example_role"))
	if err != nil {
		log.Fatal(err)
	}
	defer svc.Close()
	admin, _ := svc.Bootstrap(ctx, "ada@example.com", "Ada", "correct horse battery staple")
	org, _ := svc.CreateOrg(ctx, admin, "Seoul DC")
	join := func(email string) authz.UserID {
		_ = svc.SignUp(ctx, email, "Someone", "purple monkey dishwasher", org.ID)
		q, _ := svc.Registrations(ctx, admin, org.ID, approval.AllTime, approval.Pending)
		_ = svc.Approve(ctx, admin, q[0].ID)
		return q[0].User
	}
	mina, joon := join("mina@example.com"), join("joon@example.com")
	_ = svc.ChangeRole(ctx, admin, mina, org.ID, authz.Manager)

	fmt.Println(svc.ChangeRole(ctx, mina, joon, org.ID, authz.Manager))
	fmt.Println(svc.ChangeRole(ctx, mina, mina, org.ID, authz.PlatformAdmin))
	fmt.Println(svc.ChangeRole(ctx, mina, joon, org.ID, authz.PlatformAdmin))
	// Output:
	// <nil>
	// authz: nobody may change their own role
	// authz: a Manager may assign only the Member and Manager roles
}

func ExampleService_Login() {
	ctx := context.Background()
	svc, err := iam.New(ctx, openExampleDB("example_login"))
	if err != nil {
		log.Fatal(err)
	}
	defer svc.Close()
	admin, _ := svc.Bootstrap(ctx, "ada@example.com", "Ada", "correct horse battery staple")

	token, err := svc.Login(ctx, "ADA@example.com", "correct horse battery staple")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("printed token:", token) // tokens never print their secret
	who, _ := svc.Authenticate(ctx, token.Reveal())
	fmt.Println("authenticated as the admin:", who == admin)
	_, err = svc.Login(ctx, "ada@example.com", "wrong horse battery staple")
	fmt.Println(err)
	// Output:
	// printed token: [REDACTED]
	// authenticated as the admin: true
	// authz: unauthenticated: wrong email or password
}

// exampleSeoul starts a Service with Ada (a PlatformAdmin) and an org in
// which Mina is a Manager, Joon a Member granted vpn and Hana a Member
// without categories.
func exampleSeoul(name string) (svc *iam.Service, admin authz.UserID, org authz.OrgID) {
	ctx := context.Background()
	svc, err := iam.New(ctx, openExampleDB(name))
	if err != nil {
		log.Fatal(err)
	}
	admin, _ = svc.Bootstrap(ctx, "ada@example.com", "Ada", "correct horse battery staple")
	seoul, _ := svc.CreateOrg(ctx, admin, "Seoul DC")
	for _, email := range []string{"mina@example.com", "joon@example.com", "hana@example.com"} {
		_ = svc.SignUp(ctx, email, "Someone", "purple monkey dishwasher", seoul.ID)
		q, _ := svc.Registrations(ctx, admin, seoul.ID, approval.AllTime, approval.Pending)
		_ = svc.Approve(ctx, admin, q[0].ID)
		switch email {
		case "mina@example.com":
			_ = svc.ChangeRole(ctx, admin, q[0].User, seoul.ID, authz.Manager)
		case "joon@example.com":
			_ = svc.SetCategories(ctx, admin, q[0].User, seoul.ID, authz.NewCategorySet(authz.VPN))
		}
	}
	return svc, admin, seoul.ID
}

// Members lists an org a page at a time: pass each page's Next as the
// following page's After until it is empty.
func ExampleService_Members() {
	ctx := context.Background()
	svc, admin, org := exampleSeoul("example_members")
	defer svc.Close()

	p := iam.Page{Limit: 2}
	for n := 1; ; n++ {
		page, err := svc.Members(ctx, admin, org, p)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("page %d: %d members\n", n, len(page.Members))
		if page.Next == "" {
			break
		}
		p.After = page.Next
	}
	_, err := svc.Members(ctx, admin, org, iam.Page{After: "not a cursor"})
	fmt.Println(errors.Is(err, iam.ErrInvalid))
	// Output:
	// page 1: 2 members
	// page 2: 1 members
	// true
}

// Member reads the one user picked on Permission Management; someone
// who holds no role in the org is not found, as if they did not exist.
func ExampleService_Member() {
	ctx := context.Background()
	svc, admin, org := exampleSeoul("example_member")
	defer svc.Close()

	page, err := svc.MembersWith(ctx, admin, org, authz.VPN, iam.Page{})
	if err != nil {
		log.Fatal(err)
	}
	joon := page.Members[0].ID
	m, err := svc.Member(ctx, admin, joon, org)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(m.Email, m.Role, m.Categories)
	_, err = svc.Member(ctx, admin, admin, org) // Ada holds no role in Seoul DC
	fmt.Println(errors.Is(err, iam.ErrNotFound))
	// Output:
	// joon@example.com member vpn
	// true
}

// MembersWith lists the explicit grants of a category: Mina, a Manager,
// uses vpn without a grant and is not listed.
func ExampleService_MembersWith() {
	ctx := context.Background()
	svc, admin, org := exampleSeoul("example_members_with")
	defer svc.Close()

	page, err := svc.MembersWith(ctx, admin, org, authz.VPN, iam.Page{})
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range page.Members {
		fmt.Println(m.Email, m.Role, m.Categories)
	}
	// Output:
	// joon@example.com member vpn
}

// Access answers "who can use vpn in Seoul DC, and why": everyone the
// engine allows, as Check would decide.
func ExampleService_Access() {
	ctx := context.Background()
	svc, admin, org := exampleSeoul("example_access")
	defer svc.Close()

	page, err := svc.Access(ctx, admin, org, authz.VPN, iam.Page{})
	if err != nil {
		log.Fatal(err)
	}
	var lines []string
	for _, a := range page.Accessors {
		lines = append(lines, fmt.Sprintf("%s: %v", a.Email, a.Reason))
	}
	slices.Sort(lines) // the listing is in user-id order, which is random
	fmt.Println(strings.Join(lines, "\n"))
	// Output:
	// ada@example.com: PlatformAdmin
	// joon@example.com: granted
	// mina@example.com: Manager of the org
}

// Users lists every account of the platform, for PlatformAdmins only.
func ExampleService_Users() {
	ctx := context.Background()
	svc, admin, org := exampleSeoul("example_users")
	defer svc.Close()

	page, err := svc.Users(ctx, admin, iam.Page{Limit: 10})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(page.Accounts), "accounts, last page:", page.Next == "")
	members, _ := svc.Members(ctx, admin, org, iam.Page{})
	_, err = svc.Users(ctx, members.Members[0].ID, iam.Page{})
	fmt.Println(errors.Is(err, iam.ErrForbidden))
	// Output:
	// 4 accounts, last page: true
	// true
}
