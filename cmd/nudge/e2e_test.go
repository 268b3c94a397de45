package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nudgehq/nudge/data/config"
	"github.com/nudgehq/nudge/serve"
)

var demo = config.Demo().Sites[0]

// binary builds cmd/nudge once per test run and returns its path.
var binary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "nudge-e2e-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "nudge")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

func TestMain(m *testing.M) {
	code := m.Run()
	if bin, err := binary(); err == nil {
		os.RemoveAll(filepath.Dir(bin))
	}
	os.Exit(code)
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proc is a running `nudge serve`.
type proc struct {
	cmd  *exec.Cmd
	url  string
	logs *syncBuffer
	done chan error
}

// startServe starts the real binary on 127.0.0.1:0 with dataDir and waits for its
// "listening" log line to learn the address.
func startServe(t *testing.T, dataDir string, extra ...string) *proc {
	t.Helper()
	bin, err := binary()
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data", dataDir, "--log-format", "json"}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "NUDGE_CONFIG=") // the demo site
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, logs: &syncBuffer{}, done: make(chan error, 1)}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		sent := false
		for sc.Scan() {
			line := sc.Bytes()
			p.logs.Write(append(bytes.Clone(line), '\n'))
			var rec struct{ Msg, Addr string }
			if !sent && json.Unmarshal(line, &rec) == nil && rec.Msg == "listening" {
				addr <- rec.Addr
				sent = true
			}
		}
		io.Copy(p.logs, stderr)
		p.done <- cmd.Wait()
	}()
	select {
	case a := <-addr:
		p.url = "http://" + a
	case err := <-p.done:
		t.Fatalf("nudge serve exited before listening: %v\n%s", err, p.logs)
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("nudge serve did not log its address in 60s:\n%s", p.logs)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(d):
		p.cmd.Process.Kill()
		t.Fatalf("nudge serve did not exit within %v:\n%s", d, p.logs)
	}
	return -1
}

// sentEvent is an event whose batch got a 2xx.
type sentEvent struct{ id, session string }

// sender posts batches and records what got a 2xx.
type sender struct {
	url    string
	client *http.Client

	mu    sync.Mutex
	acked []sentEvent
	other int // batches that got a non-2xx status (not transport errors)
}

func newSender(url string) *sender {
	return &sender{url: url, client: &http.Client{Timeout: 30 * time.Second}}
}

func eventsBody(prefix, session string, n int, ts int64) ([]byte, []sentEvent) {
	var evs []string
	var sent []sentEvent
	for i := range n {
		id := fmt.Sprintf("%s-%d", prefix, i)
		typ := "page_view"
		if i%4 == 3 {
			typ = "click"
		}
		evs = append(evs, fmt.Sprintf(`{"event_id":%q,"session_id":%q,"anonymous_id":"anon-%s","type":%q,"timestamp":%d}`,
			id, session, session, typ, ts+int64(i)))
		sent = append(sent, sentEvent{id, session})
	}
	return []byte(`{"events":[` + strings.Join(evs, ",") + `]}`), sent
}

func (s *sender) ackedCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.acked)
}

// post sends one batch; it reports whether the batch was acknowledged.
func (s *sender) post(body []byte, sent []sentEvent) (bool, error) {
	req, err := http.NewRequest(http.MethodPost, s.url+"/v1/events", bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Authorization", "Bearer "+demo.WriteKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return false, err // transport error: unknown outcome
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		s.mu.Lock()
		s.other++
		s.mu.Unlock()
		return false, fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	var ir serve.IngestResponse
	if err := json.Unmarshal(b, &ir); err != nil || ir.Accepted != len(sent) {
		return false, fmt.Errorf("bad 2xx body %q: %v", b, err)
	}
	s.mu.Lock()
	s.acked = append(s.acked, sent...)
	s.mu.Unlock()
	return true, nil
}

func getJSON(t *testing.T, url string, out any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+demo.AdminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("GET %s: %v: %s", url, err, b)
	}
}

// verify checks that every acknowledged event is stored exactly once, using the admin API:
// each session's events by id, and the stats' totals.
func verify(t *testing.T, url string, acked []sentEvent, attempted int) {
	t.Helper()
	bySession := map[string]map[string]bool{}
	for _, e := range acked {
		if bySession[e.session] == nil {
			bySession[e.session] = map[string]bool{}
		}
		bySession[e.session][e.id] = true
	}
	var st serve.StatsResponse
	getJSON(t, url+"/v1/stats", &st)
	if st.TotalEvents < int64(len(acked)) || st.TotalEvents > int64(attempted) {
		t.Errorf("stats count %d events; %d were acknowledged, %d attempted", st.TotalEvents, len(acked), attempted)
	}
	for sess, want := range bySession {
		var sr serve.SessionResponse
		getJSON(t, url+"/v1/sessions/"+sess, &sr)
		seen := map[string]int{}
		for _, e := range sr.Events {
			seen[e.EventID]++
		}
		for id, n := range seen {
			if n != 1 {
				t.Errorf("session %s: event %s stored %d times", sess, id, n)
			}
		}
		for id := range want {
			if seen[id] != 1 {
				t.Errorf("session %s: acknowledged event %s lost", sess, id)
			}
		}
	}
}

// TestDurabilitySIGKILL sends batches from several goroutines, kills the server with SIGKILL
// at a random moment, restarts it on the same directory and checks that every event that got
// a 2xx is there exactly once. Several rounds accumulate in one directory.
//
// With --unsafe-no-sync the same must hold: only a power cut or kernel crash may lose
// acknowledged events, not a killed process.
func TestDurabilitySIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Run("durable", func(t *testing.T) { testDurability(t) })
	t.Run("unsafe-no-sync", func(t *testing.T) { testDurability(t, "--unsafe-no-sync") })
}

func testDurability(t *testing.T, flags ...string) {
	dir := t.TempDir()
	var (
		acked     []sentEvent
		attempted int
	)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	const rounds, workers, batchLen = 4, 4, 50
	for round := range rounds {
		p := startServe(t, dir, flags...)
		if round > 0 {
			verify(t, p.url, acked, attempted)
		}
		s := newSender(p.url)
		var wg sync.WaitGroup
		var mu sync.Mutex
		stop := make(chan struct{})
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for b := 0; ; b++ {
					select {
					case <-stop:
						return
					default:
					}
					session := fmt.Sprintf("r%d-w%d-s%d", round, w, b/5)
					body, sent := eventsBody(fmt.Sprintf("r%d-w%d-b%d", round, w, b), session, batchLen, time.Now().UnixMilli())
					mu.Lock()
					attempted += len(sent)
					mu.Unlock()
					if _, err := s.post(body, sent); err != nil {
						return // the server is gone
					}
				}
			}()
		}
		// Kill at a random moment after the first acknowledgement (on a loaded machine the
		// first batch can take a while).
		for deadline := time.Now().Add(30 * time.Second); s.ackedCount() == 0 && time.Now().Before(deadline); {
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(time.Duration(rng.IntN(400)) * time.Millisecond)
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		p.wait(t, 10*time.Second)
		close(stop)
		wg.Wait()
		if s.other > 0 {
			t.Errorf("round %d: %d batches got a non-2xx status before the kill", round, s.other)
		}
		if len(s.acked) == 0 {
			t.Errorf("round %d: nothing acknowledged before the kill:\n%s", round, p.logs)
		}
		t.Logf("round %d: %d events acknowledged before SIGKILL", round, len(s.acked))
		acked = append(acked, s.acked...)
	}
	p := startServe(t, dir, flags...)
	verify(t, p.url, acked, attempted)

	// A retry of acknowledged batches after the restart is deduplicated.
	s := newSender(p.url)
	body, sent := eventsBody("r0-w0-b0", "r0-w0-s0", batchLen, time.Now().UnixMilli())
	req, _ := http.NewRequest(http.MethodPost, p.url+"/v1/events", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+demo.WriteKey)
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var ir serve.IngestResponse
	json.NewDecoder(resp.Body).Decode(&ir)
	resp.Body.Close()
	if ir.Duplicates != len(sent) || ir.Stored != 0 {
		t.Errorf("retry of an acknowledged batch: %+v, want %d duplicates", ir, len(sent))
	}
	verify(t, p.url, acked, attempted)
}

// TestGracefulSIGTERM sends traffic, sends SIGTERM while requests are in flight, and checks
// that the server exits 0, that no request got a 5xx, and that a restart sees every
// acknowledged event.
func TestGracefulSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	p := startServe(t, dir)
	s := newSender(p.url)
	var wg sync.WaitGroup
	var mu sync.Mutex
	attempted := 0
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := 0; ; b++ {
				body, sent := eventsBody(fmt.Sprintf("g-w%d-b%d", w, b), fmt.Sprintf("g-w%d-s%d", w, b/5), 50, time.Now().UnixMilli())
				mu.Lock()
				attempted += len(sent)
				mu.Unlock()
				if _, err := s.post(body, sent); err != nil {
					return
				}
			}
		}()
	}
	for deadline := time.Now().Add(30 * time.Second); s.ackedCount() == 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGTERM:\n%s", code, p.logs)
	}
	wg.Wait()
	if s.other > 0 {
		t.Errorf("%d batches got a non-2xx status during shutdown", s.other)
	}
	for _, want := range []string{"shutting down", "http server stopped", "store closed"} {
		if !strings.Contains(p.logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, p.logs)
		}
	}
	if len(s.acked) == 0 {
		t.Fatal("nothing acknowledged")
	}
	t.Logf("%d events acknowledged before and during shutdown", len(s.acked))
	p2 := startServe(t, dir)
	verify(t, p2.url, s.acked, attempted)
}

func TestServeBadConfig(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"syntax", "sites:\n  - id: demo\n    write_key: [unclosed\n", []string{"bad.yaml:"}},
		{"invalid field", "sites:\n  - id: demo\n    write_key: short\n    admin_key: ak_0123456789abcdef0\n",
			[]string{"bad.yaml:3:", "write_key"}},
		{"unknown field", "sites:\n  - id: demo\n    colour: blue\n", []string{"bad.yaml:3:", "colour"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, "bad.yaml")
			if err := os.WriteFile(path, []byte(tt.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			code := run(ctx, []string{"serve", "--config", path, "--addr", "127.0.0.1:0", "--data", filepath.Join(dir, "data")},
				nil, &stdout, &stderr)
			if code == 0 {
				t.Fatalf("exit 0 with a bad config; stderr:\n%s", stderr.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr.String())
				}
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		var stderr bytes.Buffer
		code := run(context.Background(), []string{"serve", "--config", filepath.Join(dir, "nope.yaml"), "--data", filepath.Join(dir, "d")}, nil, io.Discard, &stderr)
		if code == 0 || !strings.Contains(stderr.String(), "nope.yaml") {
			t.Errorf("exit %d, stderr %q", code, stderr.String())
		}
	})
}

// TestServeInProcess runs `nudge serve` through run() with the example config, checks the
// busy-port failure and a clean exit when the context ends.
func TestServeInProcess(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	stderr := &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--data", dir, "--log-format", "json",
			"--config", "../../data/config/nudge.example.yaml"}, nil, io.Discard, stderr)
	}()
	var addr string
	for deadline := time.Now().Add(30 * time.Second); addr == "" && time.Now().Before(deadline); {
		for _, line := range strings.Split(stderr.String(), "\n") {
			var rec struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "listening" {
				addr = rec.Addr
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if addr == "" {
		cancel()
		t.Fatalf("no listening line:\n%s", stderr)
	}
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("healthz %d", resp.StatusCode)
	}
	// A second server on the same port fails at once.
	var errBuf bytes.Buffer
	if code := run(context.Background(), []string{"serve", "--addr", addr, "--data", t.TempDir()}, nil, io.Discard, &errBuf); code == 0 ||
		!strings.Contains(errBuf.String(), "address already in use") {
		t.Errorf("busy port: exit %d, stderr %q", code, errBuf.String())
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d:\n%s", code, stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
}
