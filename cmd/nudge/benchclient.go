package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The load generator of `nudge bench ingest`. It shares the machine's cores with the server
// it measures, so the less CPU it takes the closer the figure is to the server's own capacity
// (in production the clients are browsers on other machines). The raw client writes each
// request by hand on its own keep-alive connection and parses the response with net/http's
// http.ReadResponse; net/http's client (--client std) adds a writer and a reader goroutine
// per connection, a context and header maps per request. The server side is the same either
// way: net/http and echo parse every request in full. The client's goroutines (and the
// transport's, which they start) carry the pprof label side=client.

// poster sends one body and returns the response's status and body.
type poster interface {
	post(ctx context.Context, body []byte) (int, []byte, error)
	close()
}

// stdPoster is net/http's client.
type stdPoster struct {
	client *http.Client
	url    string
	auth   string
}

func (p *stdPoster) post(ctx context.Context, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", p.auth)
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func (p *stdPoster) close() { p.client.CloseIdleConnections() }

// rawPoster writes HTTP/1.1 requests by hand on one keep-alive connection.
type rawPoster struct {
	conn net.Conn
	w    *bufio.Writer
	r    *bufio.Reader
	head []byte // the request line and headers up to "Content-Length: "
	buf  []byte
}

func newRawPoster(addr, key string) (*rawPoster, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	head := "POST /v1/events HTTP/1.1\r\nHost: " + addr + "\r\nAuthorization: Bearer " + key +
		"\r\nContent-Type: application/json\r\nContent-Length: "
	return &rawPoster{conn: conn, w: bufio.NewWriterSize(conn, 64<<10), r: bufio.NewReader(conn), head: []byte(head)}, nil
}

func (p *rawPoster) post(ctx context.Context, body []byte) (int, []byte, error) {
	if d, ok := ctx.Deadline(); ok {
		_ = p.conn.SetDeadline(d)
	}
	p.buf = append(append(p.buf[:0], p.head...), strconv.Itoa(len(body))...)
	p.buf = append(p.buf, "\r\n\r\n"...)
	p.w.Write(p.buf)
	p.w.Write(body)
	if err := p.w.Flush(); err != nil {
		return 0, nil, err
	}
	resp, err := http.ReadResponse(p.r, nil)
	if err != nil {
		return 0, nil, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil && resp.Close {
		err = fmt.Errorf("the server closed the connection")
	}
	return resp.StatusCode, b, err
}

func (p *rawPoster) close() { p.conn.Close() }

// benchSend posts bodies to http://addr/v1/events from c goroutines, each with its own
// connection, and times it. Every request must get a 200.
func benchSend(ctx context.Context, client, addr, key string, bodies [][]byte, c int) (benchResult, error) {
	counts := make([]int64, len(bodies))
	for i, b := range bodies {
		counts[i] = int64(bytes.Count(b, []byte(`"event_id"`)))
	}
	var (
		next     atomic.Int64
		events   atomic.Int64
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err; cancel() })
	}
	var std *stdPoster // one client shared by the goroutines (its transport pools c connections)
	if client == "std" {
		tr := &http.Transport{MaxIdleConnsPerHost: c, MaxConnsPerHost: c, DisableCompression: true}
		std = &stdPoster{client: &http.Client{Transport: tr}, url: "http://" + addr + "/v1/events", auth: "Bearer " + key}
	}
	posters := make([]poster, c)
	for g := range posters {
		if std != nil {
			posters[g] = std
			continue
		}
		p, err := newRawPoster(addr, key)
		if err != nil {
			for _, q := range posters[:g] {
				q.close()
			}
			return benchResult{}, fmt.Errorf("bench: connect: %w", err)
		}
		posters[g] = p
	}
	// A failure or the run's deadline ends every request in flight (closing a connection
	// ends its read).
	defer context.AfterFunc(ctx, func() {
		for _, p := range posters {
			p.close()
		}
	})()
	start := time.Now()
	for _, p := range posters {
		wg.Add(1)
		go pprof.Do(ctx, pprof.Labels("side", "client"), func(ctx context.Context) {
			defer wg.Done()
			defer p.close()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(bodies) || ctx.Err() != nil {
					return
				}
				status, body, err := p.post(ctx, bodies[i])
				if err != nil {
					fail(fmt.Errorf("bench: request %d: %w", i, err))
					return
				}
				if status != http.StatusOK {
					fail(fmt.Errorf("bench: request %d: status %d: %s", i, status, body))
					return
				}
				events.Add(counts[i])
			}
		})
	}
	wg.Wait()
	res := benchResult{HTTP: time.Since(start), Requests: len(bodies), Events: int(events.Load())}
	if firstErr != nil {
		return res, firstErr
	}
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("bench: %w", err)
	}
	return res, nil
}
