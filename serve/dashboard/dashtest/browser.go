package dashtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
)

// ChromiumPath is where the browser tests look for Chromium (Debian's package); the
// environment variable NUDGE_CHROMIUM overrides it.
const ChromiumPath = "/usr/bin/chromium"

// Chromium returns the Chromium binary to drive. When there is none, the test is skipped
// with a message saying how to get one, except when the environment variable CI is set:
// there a missing browser fails the test, so a CI run cannot pass without its browser
// tests.
func Chromium(t testing.TB) string {
	t.Helper()
	path := ChromiumPath
	if p := os.Getenv("NUDGE_CHROMIUM"); p != "" {
		path = p
	}
	if _, err := exec.LookPath(path); err != nil {
		msg := fmt.Sprintf("headless Chromium not found at %s (%v): install it (apt-get install -y chromium; ./test.sh does) or set NUDGE_CHROMIUM", path, err)
		if os.Getenv("CI") != "" {
			t.Fatalf("CI is set and the browser tests cannot run: %s", msg)
		}
		t.Skip("skipping the browser test: " + msg)
	}
	return path
}

// Browser is a headless Chromium with a fresh profile, its console and a download folder.
type Browser struct {
	Ctx         context.Context // a tab; actions on it time out with the test's deadline
	DownloadDir string

	mu       sync.Mutex
	messages []chromedp.ConsoleMessage
	sentinel int
}

// NewBrowser starts headless Chromium for the test (see Chromium for when it is absent)
// with the flags of a quiet, sandbox-free, offline-friendly run, a fresh --user-data-dir
// and downloads allowed into a temporary folder. It is stopped when the test ends.
func NewBrowser(t *testing.T) *Browser {
	t.Helper()
	path := Chromium(t)
	b := &Browser{DownloadDir: t.TempDir()}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
		chromedp.WindowSize(1440, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	// The first action starts the browser: it gets no deadline of its own (that would stop
	// the browser with it).
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	if _, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: b.DownloadDir, EventsEnabled: ptr(true),
	}); err != nil {
		t.Fatalf("chromium: allow downloads: %v", err)
	}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.messages = append(b.messages, m)
			b.mu.Unlock()
		}
	}()
	deadline, ok := t.Deadline()
	if !ok {
		deadline = time.Now().Add(10 * time.Minute)
	}
	tctx, cancel := context.WithDeadline(ctx, deadline.Add(-5*time.Second))
	t.Cleanup(cancel)
	b.Ctx = tctx
	return b
}

func ptr[T any](v T) *T { return &v }

// ConsoleErrors returns the console errors and uncaught exceptions of the pages so far
// (failed resource loads included). It first waits for a marker message written now, so
// every earlier message has been delivered.
func (b *Browser) ConsoleErrors(t *testing.T) []string {
	t.Helper()
	b.mu.Lock()
	b.sentinel++
	mark := fmt.Sprintf("nudge-test-sync-%d", b.sentinel)
	b.mu.Unlock()
	if err := chromedp.Do(b.Ctx, chromedp.Evaluate[chromedp.Void](`console.info(`+"`"+mark+"`"+`)`)); err != nil {
		t.Fatalf("console sync: %v", err)
	}
	for {
		b.mu.Lock()
		var errs []string
		seen := false
		for _, m := range b.messages {
			if m.Text == mark {
				seen = true
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException {
				errs = append(errs, fmt.Sprintf("%s (%s:%d)", m, m.URL, m.Line+1))
			}
		}
		b.mu.Unlock()
		if seen {
			return errs
		}
		select {
		case <-b.Ctx.Done():
			t.Fatalf("console sync: %v", b.Ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// ResetConsole forgets the messages so far (after a step that logs an expected error).
func (b *Browser) ResetConsole(t *testing.T) {
	t.Helper()
	b.ConsoleErrors(t)
	b.mu.Lock()
	b.messages = nil
	b.mu.Unlock()
}

// Screenshot saves a full-page PNG as dir/name and returns its path.
func (b *Browser) Screenshot(t *testing.T, dir, name string) string {
	t.Helper()
	buf, err := chromedp.Run(b.Ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// Download clicks the link sel and waits for the browser to finish the download; it
// returns the saved file's path.
func (b *Browser) Download(t *testing.T, sel string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(b.Ctx)
	defer cancel()
	begin := chromedp.BrowserEvents(ctx, browser.DownloadWillBegin)
	progress := chromedp.BrowserEvents(ctx, browser.DownloadProgress)
	if err := chromedp.Do(b.Ctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
		t.Fatalf("click %s: %v", sel, err)
	}
	var name, guid string
	for ev, err := range begin {
		if err != nil {
			t.Fatalf("download of %s did not begin: %v", sel, err)
		}
		name, guid = ev.SuggestedFilename, ev.GUID
		break
	}
	for ev, err := range progress {
		if err != nil {
			t.Fatalf("download of %s: %v", sel, err)
		}
		if ev.GUID != guid {
			continue
		}
		if ev.State == browser.DownloadProgressStateCanceled {
			t.Fatalf("download of %s canceled", sel)
		}
		if ev.State == browser.DownloadProgressStateCompleted {
			break
		}
	}
	path := filepath.Join(b.DownloadDir, name)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("downloaded file: %v", err)
	}
	return path
}

// Navigating runs act (a click or a form submission that loads a new page) and waits until
// the new document is loaded and cond (a JavaScript expression) holds in it.
func (b *Browser) Navigating(t *testing.T, what string, act chromedp.Action[chromedp.Void], cond string) {
	t.Helper()
	if err := chromedp.Do(b.Ctx, chromedp.Evaluate[chromedp.Void](`window.__nudgeOldPage = true`), act); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	b.WaitJS(t, what, `!window.__nudgeOldPage && document.readyState === "complete" && (`+cond+`)`)
}

// waitLimit bounds how long WaitJS waits for a page, so a step that cannot happen fails
// with the page's address rather than at the test's deadline (a page of the real engine on a
// loaded machine takes seconds).
const waitLimit = 2 * time.Minute

// WaitJS evaluates the JavaScript condition until it is true, across navigations, for at most
// waitLimit.
func (b *Browser) WaitJS(t *testing.T, what, cond string) {
	t.Helper()
	var last error
	limit := time.After(waitLimit)
	for {
		ok, err := chromedp.Run(b.Ctx, chromedp.Evaluate[bool](`!!(`+cond+`)`))
		if err == nil && ok {
			return
		}
		last = err
		select {
		case <-b.Ctx.Done():
			t.Fatalf("waiting for %s (%s): %v (last error %v)", what, cond, b.Ctx.Err(), last)
		case <-limit:
			ctx, cancel := context.WithTimeout(context.WithoutCancel(b.Ctx), 5*time.Second)
			href, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href`))
			cancel()
			t.Fatalf("waiting for %s (%s): not true after %v at %s (last error %v)", what, cond, waitLimit, href, last)
		case <-time.After(25 * time.Millisecond):
		}
	}
}
