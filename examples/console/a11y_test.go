package main

// The "accessible markup (labels, headings, focus order)", checked
// in the browser: every main page, as the role that sees it, against
// Chromium's own accessibility tree and its DOM; and the keyboard alone
// through the login page and the Remove confirmation modal.

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/accessibility"
	"github.com/chromedp/cdproto/dom"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/kiops/iam/internal/dbtest"
)

// inSQLiteBrowser runs f once, on SQLite in memory, in a browser: the
// markup does not depend on the database, so the other databases would
// add time and no coverage.
func inSQLiteBrowser(t *testing.T, f func(t *testing.T, w *world, people func(name string) *person)) {
	t.Helper()
	newChrome(t).with(t, newWorld(t, dbtest.SQLiteMemory), f)
}

// markupProblems is run in the page (Runtime.evaluate, which the page's
// CSP does not govern) and lists what the page's DOM breaks of the rules
// that need no accessible name computation: each problem names the
// element by its start tag.
const markupProblems = `(() => {
  const problems = [];
  const tag = e => { const h = e.outerHTML; const s = h.slice(0, h.indexOf('>') + 1); return s.length > 200 ? s.slice(0, 200) + '…' : s; };
  const text = e => (e.textContent || '').trim();
  // aria-label, or aria-labelledby naming existing elements with text.
  const ariaNamed = e => {
    if ((e.getAttribute('aria-label') || '').trim()) return true;
    const ids = (e.getAttribute('aria-labelledby') || '').split(/\s+/).filter(Boolean);
    return ids.length > 0 && ids.every(id => document.getElementById(id)) && ids.some(id => text(document.getElementById(id)));
  };
  if (!document.documentElement.lang.trim()) problems.push('<html> has no lang');

  // Headings: one h1, and no level skipped on the way down (the menu's
  // h2 may come before the h1: a level-2 start skips nothing).
  const headings = [...document.querySelectorAll('h1, h2, h3, h4, h5, h6')];
  const h1 = headings.filter(h => h.tagName === 'H1').length;
  if (h1 !== 1) problems.push(h1 + ' h1 elements, want exactly one');
  let prev = 1;
  for (const h of headings) {
    const level = Number(h.tagName[1]);
    if (level > prev + 1) problems.push('heading level skips from h' + prev + ' to h' + level + ': ' + tag(h) + text(h));
    if (!text(h)) problems.push('empty heading: ' + tag(h));
    prev = level;
  }

  const seen = new Map();
  for (const e of document.querySelectorAll('[id]')) {
    if (seen.has(e.id)) problems.push('id "' + e.id + '" used twice: ' + tag(seen.get(e.id)) + ' and ' + tag(e));
    else seen.set(e.id, e);
  }

  for (const c of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
    const label = c.id && document.querySelector('label[for="' + CSS.escape(c.id) + '"]');
    if (!(label && text(label)) && !ariaNamed(c)) problems.push('form control without a label: ' + tag(c));
  }

  for (const t of document.querySelectorAll('table')) {
    if (!(t.caption && text(t.caption)) && !ariaNamed(t)) problems.push('table without a caption or an accessible name: ' + tag(t));
    if (!t.querySelector('th')) problems.push('table without header cells: ' + tag(t));
    for (const th of t.querySelectorAll('th')) {
      if (!['col', 'row', 'colgroup', 'rowgroup'].includes(th.getAttribute('scope'))) problems.push('th without scope: ' + tag(th) + text(th));
    }
  }

  // Focus order is the document's: a positive tabindex would reorder it.
  for (const e of document.querySelectorAll('[tabindex]')) {
    if (e.tabIndex > 0) problems.push('positive tabindex: ' + tag(e));
  }
  const skip = document.querySelector('a.skip');
  const main = document.getElementById('main');
  if (!skip || skip.getAttribute('href') !== '#main') problems.push('no skip link to #main');
  if (!main || main.tagName !== 'MAIN' || main.getAttribute('tabindex') !== '-1') problems.push('#main is not a <main> that takes the focus (tabindex=-1): ' + (main ? tag(main) : 'none'));

  for (const d of document.querySelectorAll('dialog')) {
    const ids = (d.getAttribute('aria-labelledby') || '').split(/\s+/).filter(Boolean);
    if (ids.length === 0) problems.push('dialog without aria-labelledby: ' + tag(d));
    for (const id of ids) {
      const h = document.getElementById(id);
      if (!h) problems.push('dialog labelled by #' + id + ', which does not exist: ' + tag(d));
      else if (!/^H[1-6]$/.test(h.tagName) || !d.contains(h) || !text(h)) problems.push('dialog labelled by #' + id + ', not a heading with text inside it: ' + tag(h));
    }
  }
  return problems;
})()`

// interactive are the accessibility tree's roles of the controls a person
// operates; they must have a name, as must anything else focusable.
var interactive = map[string]bool{
	"link": true, "button": true, "textbox": true, "searchbox": true, "combobox": true, "listbox": true,
	"checkbox": true, "radio": true, "switch": true, "spinbutton": true, "slider": true, "menuitem": true, "tab": true,
}

// unnamed lists the controls and focusable nodes of the accessibility
// tree, as Chromium computed it, whose accessible name is empty; each is
// named by its element's start tag.
func (p *person) unnamed() []string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	tree, err := chromedp.Call(ctx, accessibility.GetFullAXTree, accessibility.GetFullAXTreeParams{})
	if err != nil {
		p.failed("read the accessibility tree", err)
	}
	var out []string
	for _, n := range tree.Nodes {
		if n.Ignored || n.Role == nil {
			continue
		}
		role := strings.Trim(string(n.Role.Value), `"`)
		focusable := false
		for _, prop := range n.Properties {
			if prop.Name == accessibility.PropertyNameFocusable && prop.Value != nil && string(prop.Value.Value) == "true" {
				focusable = true
			}
		}
		// The document and the main region (the skip link's target,
		// focusable by script only) are no controls.
		if !interactive[role] && (!focusable || role == "RootWebArea" || role == "main") {
			continue
		}
		if n.Name != nil && strings.Trim(string(n.Name.Value), `" `) != "" {
			continue
		}
		el := "(no element)"
		if n.BackendDOMNodeID != 0 {
			h, err := chromedp.Call(ctx, dom.GetOuterHTML, dom.GetOuterHTMLParams{BackendNodeID: n.BackendDOMNodeID})
			if err != nil {
				p.failed("read an unnamed element", err)
			}
			el, _, _ = strings.Cut(h.OuterHTML, ">")
			el += ">"
		}
		out = append(out, fmt.Sprintf("%s without an accessible name: %s", role, el))
	}
	return out
}

// audit checks the page the person is on (named page in the failures):
// the DOM's rules (markupProblems); the accessible names of every control,
// on the page and in each of its dialogs, opened in turn; and that Tab
// from the page's start focuses the skip link first.
func (p *person) audit(page string) {
	p.t.Helper()
	problems := read(p, "check the markup", chromedp.Evaluate[[]string](markupProblems))
	// A fresh page has the focus nowhere: Tab goes to its first
	// focusable element.
	p.press(kb.Tab)
	if f := p.focus(); f.Tag != "a" || f.Href != "#main" {
		problems = append(problems, fmt.Sprintf("Tab from the page's start focuses %v, not the skip link", f))
	}
	problems = append(problems, p.unnamed()...)
	// A closed dialog is out of the accessibility tree: open each (as
	// its opener would) to have its controls' names computed.
	dialogs := read(p, "list the dialogs", chromedp.Evaluate[[]string](`[...document.querySelectorAll('dialog')].map(d => d.id)`))
	for _, id := range dialogs {
		d := `document.getElementById(` + jsString(id) + `)`
		p.run("open #"+id, chromedp.Evaluate[chromedp.Void](d+`.showModal()`))
		for _, u := range p.unnamed() {
			problems = append(problems, "in #"+id+": "+u)
		}
		p.run("close #"+id, chromedp.Evaluate[chromedp.Void](d+`.close()`))
	}
	seen := map[string]bool{}
	for _, pr := range problems {
		if !seen[pr] {
			seen[pr] = true
			p.t.Errorf("%s, as %s: %s", page, p.name, pr)
		}
	}
}

// focused is what has the keyboard focus.
type focused struct {
	Tag, ID, Href string
	Name          string  // aria-label, else its label's text, else its own
	Dialog        string  // the id of the dialog holding it, if any
	Top, Left     float64 // on the page, in CSS pixels
}

func (f focused) String() string {
	s := "<" + f.Tag
	if f.ID != "" {
		s += " id=" + f.ID
	}
	if f.Href != "" {
		s += " href=" + f.Href
	}
	return s + "> " + f.Name
}

// focus is the element that has the focus (document.activeElement:
// <body> when none has).
func (p *person) focus() focused {
	p.t.Helper()
	return read(p, "read the focus", chromedp.Evaluate[focused](`(() => {
  const e = document.activeElement;
  if (!e || e === document.body) return {Tag: 'body'};
  const r = e.getBoundingClientRect(), d = e.closest('dialog');
  const label = e.labels && e.labels.length ? e.labels[0].textContent : '';
  return {Tag: e.tagName.toLowerCase(), ID: e.id, Href: e.getAttribute('href') || '',
    Name: (e.getAttribute('aria-label') || label || e.textContent).trim(), Dialog: d ? d.id : '',
    Top: r.top + scrollY, Left: r.left + scrollX};
})()`))
}

// TestA11yAudit checks every main page, as the role that sees it, in the
// browser (audit): <html lang>; one h1 and no heading level skipped;
// an accessible name, as Chromium computes it, for every link, button,
// field, select, checkbox and dialog opener, and for each dialog's
// controls; a label for every form control; unique ids; a caption (or a
// name) and scoped header cells for every table; the skip link to #main
// focused first by Tab; every dialog labelled by a heading inside it.
func TestA11yAudit(t *testing.T) {
	t.Parallel() // with TestKeyboard: each waits mostly on its browser
	inSQLiteBrowser(t, func(t *testing.T, w *world, people func(string) *person) {
		// A pending request, so that Pending Approvals shows its table.
		w.signUp("nia.new@example.com", "Nia Newcomer", w.a.ID)
		a := string(w.a.ID)
		// One tab for every role, signing out in between: a browser
		// context per role would cost more than the pages.
		p := people("auditor")
		as := func(email, landing string, pages ...string) {
			t.Helper()
			if email != "" {
				p.signIn(email, landing)
			}
			for _, path := range pages {
				// "path status" wants that status, "path" 200.
				path, status, ok := strings.Cut(path, " ")
				want := int64(200)
				if ok {
					want, _ = strconv.ParseInt(status, 10, 64)
				}
				if st := p.open(path); st != want {
					t.Errorf("%s: %s answered %d, want %d", p.name, path, st, want)
				}
				p.audit(path)
			}
			if email != "" {
				p.click(button("Logout"))
			}
		}
		as("", "", "/login", "/forgot-password", "/reset-password", "/signup?org="+a)
		as("mgr.a@example.com", "/users/pending",
			"/users/pending?org="+a, "/users/org?org="+a, "/features/infra?org="+a,
			"/users/all 404") // the error page
		// admin manages both orgs: the pages add their org pickers.
		as("admin@example.com", "/users/pending",
			"/users/all", "/users/org?org="+a, "/permissions?org="+a+"&user="+string(w.memA), "/orgs", "/audit")
		as("mem.a@example.com", "/",
			"/profile", "/features/database?org="+a+" 403") // Insufficient permissions
	})
}

// below tells whether b comes after a in reading order: further down, or
// on the same line further right.
func below(a, b focused) bool {
	const line = 8 // px: the same line, give or take the baselines
	if math.Abs(b.Top-a.Top) <= line {
		return b.Left > a.Left
	}
	return b.Top > a.Top
}

// TestKeyboard uses the console with the keyboard alone. On the login
// page Tab walks the skip link, Email, Password, Sign in, Forgot
// Password? and Sign up, in the order they are seen; the skip link leads
// to the main region; typing and Enter sign in. On Users by Organization,
// Tab reaches a row's Role, Edit Role and Remove in turn; Enter on Remove
// opens the modal with the focus on Cancel; Tab stays in the modal; Esc
// closes it and gives the focus back to Remove; Enter on the confirmation
// removes the member.
func TestKeyboard(t *testing.T) {
	t.Parallel()
	inSQLiteBrowser(t, func(t *testing.T, w *world, people func(string) *person) {
		mgr := people("mgrA")
		mgr.open("/login")
		want := []string{"Skip to content", "Email", "Password", "Sign in", "Forgot Password?", "Sign up"}
		var prev focused
		for i, name := range want {
			mgr.press(kb.Tab)
			f := mgr.focus()
			if f.Name != name {
				t.Fatalf("Tab %d on the login page focuses %v, want %s", i+1, f, name)
			}
			if i > 0 && !below(prev, f) {
				t.Errorf("Tab order is not the visual order: %v (top %.0f, left %.0f) after %v (top %.0f, left %.0f)",
					f, f.Top, f.Left, prev, prev.Top, prev.Left)
			}
			prev = f
		}
		mgr.shot("login-tab-order")

		// Sign in by keyboard, on a fresh page: Tab and Enter follow the
		// skip link to the main region, and Tab goes on from there.
		mgr.open("/login")
		mgr.press(kb.Tab + kb.Enter)
		if f := mgr.focus(); f.Tag != "main" {
			t.Fatalf("Enter on the skip link focuses %v, want <main>", f)
		}
		mgr.press(kb.Tab)
		if f := mgr.focus(); f.ID != "email" {
			t.Fatalf("Tab from the main region focuses %v, want the email field", f)
		}
		mgr.press("mgr.a@example.com" + kb.Tab + password)
		if st := mgr.load("press Enter", chromedp.KeyEvent(kb.Enter)); st != 200 || mgr.path() != "/users/pending" {
			t.Fatalf("signing in by keyboard: %d at %s: %s", st, mgr.path(), mgr.main())
		}

		// Users by Organization: Tab to memA's Remove.
		mgr.open("/users/org?org=" + string(w.a.ID))
		remove := "Remove Mel Member"
		var path []string
		for f := mgr.focus(); f.Name != remove; f = mgr.focus() {
			if len(path) == 80 {
				t.Fatalf("80 Tabs did not reach %q: %v", remove, path)
			}
			if f.Dialog != "" {
				t.Fatalf("Tab reached %v in the closed dialog #%s", f, f.Dialog)
			}
			path = append(path, f.String())
			mgr.press(kb.Tab)
		}
		if n := len(path); n < 3 || !strings.HasSuffix(path[n-2], "Role of Mel Member") || !strings.HasSuffix(path[n-1], "Edit Role of Mel Member") {
			t.Errorf("Tab does not walk memA's row as seen (Role, Edit Role, Remove): %v", path)
		}
		opener := mgr.focus()
		dialog := "remove-" + string(w.memA)
		isOpen := func() (open, modal bool) {
			t.Helper()
			s := read(mgr, "read the dialog", chromedp.Evaluate[[]bool](`(d => [d.open, d.matches(':modal')])(document.getElementById(`+jsString(dialog)+`))`))
			return s[0], s[1]
		}
		onCancel := func(after string) {
			t.Helper()
			if open, modal := isOpen(); !open || !modal {
				t.Fatalf("after %s the dialog is open: %v, modal: %v", after, open, modal)
			}
			if f := mgr.focus(); f.Dialog != dialog || f.Name != "Cancel" {
				t.Fatalf("after %s the focus is on %v (in dialog %q), want Cancel in #%s", after, f, f.Dialog, dialog)
			}
		}
		before := w.snapshot()
		mgr.press(kb.Enter)
		onCancel("Enter on Remove")
		mgr.shot("remove-modal-by-keyboard")
		// Tab cycles through the modal's two buttons. Past the last one
		// the browser may move the focus to its own UI, which headless
		// has none of: the document then has no focused element and the
		// next Tab comes back into the dialog. The page behind is never
		// reached.
		var cycle []string
		for range 6 {
			mgr.press(kb.Tab)
			f := mgr.focus()
			if f.Dialog != dialog && f.Tag != "body" {
				t.Fatalf("Tab in the modal left it for %v", f)
			}
			if f.Dialog == dialog {
				cycle = append(cycle, f.Name)
			}
		}
		reached := map[string]bool{}
		for i, n := range cycle {
			reached[n] = true
			if i > 0 && n == cycle[i-1] {
				t.Errorf("Tab in the modal focused %q twice in a row: %v", n, cycle)
			}
		}
		if len(reached) != 2 || !reached["Cancel"] || !reached["Remove from Org A"] {
			t.Errorf("Tab in the modal focused %v, want its two buttons in turn", cycle)
		}
		mgr.press(kb.Escape)
		if open, _ := isOpen(); open {
			t.Fatal("Esc did not close the dialog")
		}
		if f := mgr.focus(); f != opener {
			t.Errorf("after Esc the focus is on %v, want back on %v", f, opener)
		}
		if before != w.snapshot() {
			t.Fatal("opening and closing the dialog changed something")
		}
		mgr.press(kb.Enter)
		onCancel("Enter on Remove again")
		mgr.press(kb.Tab, chromedp.KeyModifiers(chromedp.ModifierShift))
		if f := mgr.focus(); f.Name != "Remove from Org A" {
			t.Fatalf("Shift+Tab from Cancel focuses %v, want Remove from Org A", f)
		}
		if st := mgr.load("press Enter on Remove from Org A", chromedp.KeyEvent(kb.Enter)); st != 200 {
			t.Fatalf("Remove by keyboard answered %d: %s", st, mgr.main())
		}
		mgr.sees("after Remove by keyboard", notices["removed"])
		if _, ok := w.member(w.a.ID, w.memA); ok {
			t.Fatal("Enter on Remove from Org A did not remove memA")
		}
	})
}
