package main

import (
	"strings"
	"testing"
)

func TestEnvAndFlags(t *testing.T) {
	t.Run("environment sets a flag", func(t *testing.T) {
		t.Setenv("NUDGE_LOG_FORMAT", "xml")
		code, _, errOut := runCmd(t, "serve", "--data", t.TempDir())
		if code != 2 || !strings.Contains(errOut, `--log-format "xml"`) {
			t.Errorf("exit %d, stderr %q", code, errOut)
		}
	})
	t.Run("flag wins over environment", func(t *testing.T) {
		t.Setenv("NUDGE_CONFIG", "/nonexistent/from-env.yaml")
		code, _, errOut := runCmd(t, "serve", "--config", "/nonexistent/from-flag.yaml", "--data", t.TempDir())
		if code == 0 || !strings.Contains(errOut, "from-flag.yaml") || strings.Contains(errOut, "from-env") {
			t.Errorf("exit %d, stderr %q", code, errOut)
		}
	})
	t.Run("bad environment value", func(t *testing.T) {
		t.Setenv("NUDGE_SESSION_TIMEOUT", "soon")
		code, _, errOut := runCmd(t, "serve", "--data", t.TempDir())
		if code != 2 || !strings.Contains(errOut, "NUDGE_SESSION_TIMEOUT") {
			t.Errorf("exit %d, stderr %q", code, errOut)
		}
	})
	t.Run("unknown command", func(t *testing.T) {
		code, _, errOut := runCmd(t, "frobnicate")
		if code == 0 || !strings.Contains(errOut, "unknown command") {
			t.Errorf("exit %d, stderr %q", code, errOut)
		}
	})
}
