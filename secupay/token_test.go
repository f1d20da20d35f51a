package secupay

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeSecret(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFileTokenRereadsOnChange(t *testing.T) {
	p := writeSecret(t, " first\n")
	ft := NewFileToken(p)
	ctx := context.Background()
	if tok, err := ft.Token(ctx); err != nil || tok != "first" {
		t.Fatalf("%q %v", tok, err)
	}
	// Same size, different content: the mtime tells.
	if err := os.WriteFile(p, []byte(" other\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(p, later, later); err != nil {
		t.Fatal(err)
	}
	if tok, _ := ft.Token(ctx); tok != "other" {
		t.Errorf("after mtime change: %q", tok)
	}
	// Size change alone.
	os.WriteFile(p, []byte("longer-token"), 0o600)
	os.Chtimes(p, later, later)
	if tok, _ := ft.Token(ctx); tok != "longer-token" {
		t.Errorf("after size change: %q", tok)
	}
	// Renew with the same token in the file: a clear error, not a retry with a dead token.
	if _, err := ft.Renew(ctx, "longer-token"); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("renew err = %v", err)
	}
	os.WriteFile(p, []byte("fresh"), 0o600)
	if tok, err := ft.Renew(ctx, "longer-token"); err != nil || tok != "fresh" {
		t.Errorf("renew: %q %v", tok, err)
	}
	os.WriteFile(p, []byte("  \n"), 0o600)
	os.Chtimes(p, later.Add(time.Hour), later.Add(time.Hour))
	if _, err := ft.Token(ctx); err == nil {
		t.Error("empty token accepted")
	}
}

func TestFileTokenRefusesReadableFile(t *testing.T) {
	p := writeSecret(t, "tok")
	os.Chmod(p, 0o644)
	if _, err := NewFileToken(p).Token(context.Background()); err == nil {
		t.Error("world-readable token file accepted")
	}
}

func TestCheckSecretFile(t *testing.T) {
	p := writeSecret(t, "s")
	if err := CheckSecretFile(p); err != nil {
		t.Errorf("0600: %v", err)
	}
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o620, 0o602} {
		os.Chmod(p, mode)
		err := CheckSecretFile(p)
		if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), fmt.Sprintf("%04o", mode)) {
			t.Errorf("%04o: %v", mode, err)
		}
	}
	if err := CheckSecretFile(t.TempDir()); err == nil {
		t.Error("directory accepted")
	}
	if err := CheckSecretFile(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing file accepted")
	}
}

// systemd ≥ 254 on kernel ≥ 6.3 shows LoadCredential= files as 0440 plus an ACL for the
// service user, in a read-only directory chmod cannot change: such a file is trusted there,
// and only there, and never when others may read it.
func TestCheckSecretFileTrustsCredentialsDirectory(t *testing.T) {
	creds := t.TempDir()
	tok := filepath.Join(creds, "token")
	if err := os.WriteFile(tok, []byte("credtok\n"), 0o440); err != nil {
		t.Fatal(err)
	}
	os.Chmod(tok, 0o440)
	os.Chmod(creds, 0o500)
	t.Cleanup(func() { os.Chmod(creds, 0o700) })
	outside := writeSecret(t, "x")
	os.Chmod(outside, 0o440)

	t.Setenv("CREDENTIALS_DIRECTORY", creds)
	if err := CheckSecretFile(tok); err != nil {
		t.Errorf("0440 in $CREDENTIALS_DIRECTORY refused: %v", err)
	}
	if got, err := NewFileToken(tok).Token(context.Background()); err != nil || got != "credtok" {
		t.Errorf("FileToken in $CREDENTIALS_DIRECTORY = %q, %v", got, err)
	}
	if err := CheckSecretFile(outside); err == nil {
		t.Error("0440 outside $CREDENTIALS_DIRECTORY accepted")
	}
	if err := CheckSecretFile(creds + "/../" + filepath.Base(filepath.Dir(outside)) + "/secret"); err == nil {
		t.Error("a path climbing out of $CREDENTIALS_DIRECTORY accepted")
	}
	t.Setenv("CREDENTIALS_DIRECTORY", "")
	if err := CheckSecretFile(tok); err == nil {
		t.Error("0440 accepted without $CREDENTIALS_DIRECTORY")
	}

	t.Setenv("CREDENTIALS_DIRECTORY", creds)
	os.Chmod(creds, 0o700)
	os.Chmod(tok, 0o444)
	if err := CheckSecretFile(tok); err == nil || !strings.Contains(err.Error(), "0444") {
		t.Errorf("world-readable file in $CREDENTIALS_DIRECTORY: %v", err)
	}
	os.Chmod(tok, 0o440)
	os.Chmod(creds, 0o770)
	if err := CheckSecretFile(tok); err == nil {
		t.Error("0440 accepted in a group-writable credentials directory")
	}
}
