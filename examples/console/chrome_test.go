package main

// The browser harness: a headless Chromium driven over the DevTools
// protocol (chromedp), one browser per test function and one browser
// context (separate cookies, like an incognito window) per person, so
// that the console is exercised as people use it: pages rendered, links
// and buttons clicked, forms typed into and the result read off the page.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/kiops/iam/internal/dbtest"
)

// readme makes the browser tests also write the main pages' screenshots
// to docs/console/ for the README (run once by hand, then commit them).
var readme = flag.Bool("console.readme", false, "also write the main pages' screenshots to docs/console/<page>.png")

const (
	// stepTimeout bounds every browser action, so a page that never
	// comes fails the test instead of blocking CI (2 cores, -race).
	stepTimeout = 30 * time.Second
	// startTimeout bounds the start of the browser and of each tab.
	startTimeout = 60 * time.Second
	// Every tab's viewport is fixed, so that the screenshots are
	// comparable from run to run.
	viewportWidth, viewportHeight = 1280, 900
)

// chromiumPath finds the browser: IAM_TEST_CHROMIUM, else the usual names
// on PATH. Without one the browser tests skip, unless IAM_TEST_BROWSER=1
// (set by CI) makes them fail: CI must never skip them silently.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("IAM_TEST_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("IAM_TEST_BROWSER") == "1" {
		t.Fatal("IAM_TEST_BROWSER=1 but no Chromium found: set IAM_TEST_CHROMIUM or put chromium on PATH")
	}
	t.Skip("no Chromium found (set IAM_TEST_CHROMIUM, or IAM_TEST_BROWSER=1 to fail instead)")
	return ""
}

// chrome is one headless browser, shared by the subtests of a test
// function; each person opens their own browser context in it.
type chrome struct {
	root context.Context
}

func newChrome(t *testing.T) *chrome {
	t.Helper()
	path := chromiumPath(t)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox, // CI runs as root, where the sandbox cannot start
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	root, cancel := chromedp.NewContext(alloc)
	// Cleanups run last-in first-out: the browser closes, then the
	// allocator waits for its process (and before TempDir is removed).
	t.Cleanup(cancelAlloc)
	t.Cleanup(cancel)
	start(t, root, cancel, "the browser")
	return &chrome{root: root}
}

// start runs the first action on ctx, which starts its browser or tab
// and binds its life to ctx: so ctx has no deadline, and a watchdog
// cancels it instead if the start hangs.
func start(t *testing.T, ctx context.Context, cancel context.CancelFunc, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- chromedp.Do(ctx, actions...) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("starting %s: %v", what, err)
		}
	case <-time.After(startTimeout):
		cancel()
		t.Fatalf("starting %s: no answer in %v", what, startTimeout)
	}
}

// shots numbers and stores the screenshots of one subtest:
// <artifacts>/<TestName>/<kind>/NN-<person>-<step>.png.
type shots struct {
	dir string
	n   int
	// readme: this subtest's screenshots may go to docs/console (only
	// SQLite's, so the two databases do not write the same files).
	readme bool
}

// artifactDir is IAM_TEST_ARTIFACTS, else examples/console/artifacts
// (ignored by git; CI can keep it as the run's artifact).
func artifactDir() string {
	if d := os.Getenv("IAM_TEST_ARTIFACTS"); d != "" {
		return d
	}
	return "artifacts"
}

// person is someone at the console in their own browser context: their
// own cookies, their own tab.
type person struct {
	t     *testing.T
	w     *world
	name  string // in the screenshots' names
	ctx   context.Context
	shots *shots
}

// person opens a new browser context for someone in the world w.
func (c *chrome) person(t *testing.T, w *world, s *shots, name string) *person {
	t.Helper()
	ctx, cancel := chromedp.NewContext(c.root, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	start(t, ctx, cancel, "the tab of "+name, chromedp.EmulateViewport(viewportWidth, viewportHeight))
	// The browser refuses what a page's CSP forbids (an inline style or
	// script, a foreign resource) and says so on the console, as it does
	// for an uncaught exception: any such message fails the test.
	var refused []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range chromedp.Console(ctx) {
			if err != nil {
				return // the tab is closed
			}
			if m.Source == "security" || m.IsException() {
				refused = append(refused, m.URL+": "+m.Text)
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		for _, r := range refused {
			t.Errorf("%s's browser console: %s", name, r)
		}
	})
	return &person{t: t, w: w, name: name, ctx: ctx, shots: s}
}

// run runs one step with its own deadline; a failure leaves a screenshot
// of the page as it was.
func (p *person) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.failed(what, err)
	}
}

// load runs actions that lead to a new page (a link, a form) and waits
// for it: its HTTP status, after redirects.
func (p *person) load(what string, actions ...chromedp.Action[chromedp.Void]) int64 {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	res, err := chromedp.RunResponse(ctx, actions...)
	if err != nil {
		p.failed(what, err)
	}
	return res.Status
}

func (p *person) failed(what string, err error) {
	p.t.Helper()
	p.shot("FAILED-" + what)
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("no result in %v: %w", stepTimeout, err)
	}
	p.t.Fatalf("%s, %s: %v\npage: %s", p.name, what, err, p.textOr("main"))
}

// open goes to path as if typed into the address bar; it answers the
// page's HTTP status.
func (p *person) open(path string) int64 {
	p.t.Helper()
	return p.load("open "+path, chromedp.Navigate(p.w.srv.URL+path))
}

// click clicks the element that the XPath (or CSS) selector finds and
// waits for the page it leads to.
func (p *person) click(sel string) int64 {
	p.t.Helper()
	return p.load("click "+sel, chromedp.Click(sel, chromedp.NodeVisible))
}

// fill puts text into the field with the id, over what the page put
// there. It sets the value at once: typing key by key (SendKeys) costs a
// protocol round trip per key, which adds up under -race on 2 cores, and
// the console has no script that would watch the keys.
func (p *person) fill(id, text string) {
	p.t.Helper()
	p.run("fill #"+id, chromedp.SetValue(chromedp.ID(id), text))
}

// read runs an action that reads something off the page, with a step's
// deadline.
func read[T any](p *person, what string, a chromedp.Action[T]) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		p.failed(what, err)
	}
	return v
}

// text is the visible text of the first element sel finds (after it is
// visible).
func (p *person) text(sel string) string {
	p.t.Helper()
	return read(p, "read "+sel, chromedp.Text(sel, chromedp.NodeVisible))
}

// textOr is the text of sel for a failure message, or why there is none.
func (p *person) textOr(sel string) string {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(sel))
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return s
}

// count is how many elements the XPath finds right now (no waiting).
func (p *person) count(xpath string) int {
	p.t.Helper()
	return read(p, "count "+xpath, chromedp.Evaluate[int](
		`document.evaluate(`+jsString(xpath)+`, document, null, XPathResult.ORDERED_NODE_SNAPSHOT_TYPE, null).snapshotLength`))
}

// path is the path of the page the person is on.
func (p *person) path() string {
	p.t.Helper()
	u, err := url.Parse(read(p, "read the location", chromedp.Location()))
	if err != nil {
		p.t.Fatal(err)
	}
	return u.Path
}

// checked tells whether the checkbox with the id is ticked.
func (p *person) checked(id string) bool {
	p.t.Helper()
	return read(p, "read #"+id, chromedp.JavascriptAttribute[bool](chromedp.ID(id), "checked"))
}

// attr is an attribute of the first element sel finds.
func (p *person) attr(sel, name string) string {
	p.t.Helper()
	a := read(p, "read "+name+" of "+sel, chromedp.AttributeValue(sel, name))
	if !a.Exists {
		p.failed("read "+name+" of "+sel, errors.New("no such attribute"))
	}
	return a.Value
}

// main is the text of the page's main region.
func (p *person) main() string {
	p.t.Helper()
	return p.text("main")
}

// sees fails the test unless the main region shows every one of want.
func (p *person) sees(what string, want ...string) {
	p.t.Helper()
	got := p.main()
	for _, s := range want {
		if !strings.Contains(got, s) {
			p.shot("FAILED-" + what)
			p.t.Fatalf("%s, %s: the page does not show %q:\n%s", p.name, what, s, got)
		}
	}
}

// shot writes a full-page PNG of what the person sees as the next
// numbered step; with -console.readme, a readme name also goes to
// docs/console/<readme>.png.
func (p *person) shot(step string, readmeName ...string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100 is PNG
	if err != nil {
		p.t.Errorf("screenshot %s: %v", step, err)
		return
	}
	p.shots.n++
	writeFile(p.t, filepath.Join(p.shots.dir, fmt.Sprintf("%02d-%s-%s.png", p.shots.n, p.name, fileSafe.ReplaceAllString(step, "-"))), png)
	if p.shots.readme && len(readmeName) > 0 {
		writeFile(p.t, filepath.Join("..", "..", "docs", "console", readmeName[0]+".png"), png)
	}
}

// fileSafe matches what a step's name (a selector, for a failure) may
// not put in a file name.
var fileSafe = regexp.MustCompile(`[^A-Za-z0-9.-]+`)

// jsString quotes s for a JavaScript expression.
func jsString(s string) string {
	b, _ := json.Marshal(s) // a string always marshals
	return string(b)
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// forEachKindInBrowser runs f on each database (forEachKind) with one
// browser shared by the subtests and a fresh screenshot folder each.
func forEachKindInBrowser(t *testing.T, f func(t *testing.T, w *world, people func(name string) *person)) {
	t.Helper()
	c := newChrome(t)
	forEachKind(t, func(t *testing.T, w *world) { c.with(t, w, f) })
}

// with runs f on the world w in this browser, with a fresh screenshot
// folder.
func (c *chrome) with(t *testing.T, w *world, f func(t *testing.T, w *world, people func(name string) *person)) {
	t.Helper()
	s := &shots{dir: filepath.Join(artifactDir(), t.Name()),
		readme: *readme && strings.HasSuffix(t.Name(), "/"+dbtest.SQLiteMemory.String())}
	if err := os.RemoveAll(s.dir); err != nil {
		t.Fatal(err)
	}
	f(t, w, func(name string) *person { return c.person(t, w, s, name) })
}

// press presses keys (kb's named keys or text, key by key) on whatever
// has the focus.
func (p *person) press(keys string, opts ...chromedp.KeyOption) {
	p.t.Helper()
	p.run(fmt.Sprintf("press %q", keys), chromedp.KeyEvent(keys, opts...))
}

// download clicks the link sel, lets the browser save the file (in a
// temporary folder: Browser.setDownloadBehavior for this person's
// browser context) and answers its suggested name and its bytes.
func (p *person) download(sel string) (string, []byte) {
	p.t.Helper()
	dir := p.t.TempDir()
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	if _, err := chromedp.CallBrowser(ctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
		Behavior:         cdpbrowser.SetDownloadBehaviorBehaviorAllowAndName, // the file is named by its GUID
		BrowserContextID: chromedp.FromContext(p.ctx).BrowserContextID,
		DownloadPath:     dir,
		EventsEnabled:    new(true),
	}); err != nil {
		p.failed("allow downloads", err)
	}
	// Subscribe before the click; the browser's events are every
	// context's, so the download is told apart by this world's URL and
	// then by its GUID.
	begun := chromedp.BrowserEvents(ctx, cdpbrowser.DownloadWillBegin)
	progress := chromedp.BrowserEvents(ctx, cdpbrowser.DownloadProgress)
	if err := chromedp.Do(ctx, chromedp.Click(sel, chromedp.NodeVisible)); err != nil {
		p.failed("click "+sel, err)
	}
	var start cdpbrowser.EventDownloadWillBegin
	for ev, err := range begun {
		if err != nil {
			p.failed("wait for the download of "+sel, err)
		}
		if strings.HasPrefix(ev.URL, p.w.srv.URL+"/") {
			start = ev
			break
		}
	}
	for ev, err := range progress {
		if err != nil {
			p.failed("wait for the end of the download of "+sel, err)
		}
		if ev.GUID != start.GUID {
			continue
		}
		if ev.State == cdpbrowser.DownloadProgressStateCanceled {
			p.t.Fatalf("%s: the download of %s was canceled", p.name, start.URL)
		}
		if ev.State == cdpbrowser.DownloadProgressStateCompleted {
			break
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, start.GUID))
	if err != nil {
		p.t.Fatal(err)
	}
	return start.SuggestedFilename, b
}
