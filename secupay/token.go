package secupay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// TokenSource hands out the bearer token. One per daemon: secupay invalidates the old token
// when a new one is issued, so two holders would keep logging each other out.
type TokenSource interface {
	// Token returns the current token, obtaining one if needed.
	Token(ctx context.Context) (string, error)
	// Renew is called after secupay refused token bad (401, or 403 ProductNotAllowedException);
	// it returns a fresh one. If another caller already renewed, it returns that token rather
	// than requesting yet another.
	Renew(ctx context.Context, bad string) (string, error)
}

// FileToken is a static token kept in a file (written by a technician or a provisioning
// tool). The file is re-read when its modification time or size changes, so a new token can
// be dropped in without restarting the daemon.
type FileToken struct {
	path string

	mu    sync.Mutex
	tok   string
	mtime time.Time
	size  int64
}

// NewFileToken returns a FileToken reading path. The file is read on first use, not here, so
// the daemon can start before the token is provisioned.
func NewFileToken(path string) *FileToken { return &FileToken{path: path} }

// Token returns the file's token, trimmed of surrounding white space.
func (f *FileToken) Token(ctx context.Context) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fi, err := os.Stat(f.path)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	if f.tok != "" && fi.ModTime().Equal(f.mtime) && fi.Size() == f.size {
		return f.tok, nil
	}
	return f.load()
}

// Renew re-reads the file. A static token cannot be renewed by ecrd, so if the file still
// holds the token secupay refused, Renew says so instead of retrying with it.
func (f *FileToken) Renew(ctx context.Context, bad string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	tok, err := f.load()
	if err != nil {
		return "", err
	}
	if tok == bad {
		return "", fmt.Errorf("the token in %s was refused by secupay; put a valid token there", f.path)
	}
	return tok, nil
}

func (f *FileToken) load() (string, error) {
	tok, fi, err := readSecret(f.path)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	f.tok, f.mtime, f.size = tok, fi.ModTime(), fi.Size()
	return tok, nil
}

// readSecret checks and reads a secret file. Stat and read go through one open file, so the
// mode checked is the mode of the file read.
func readSecret(path string) (string, os.FileInfo, error) {
	file, err := os.Open(path)
	if err != nil {
		return "", nil, err
	}
	defer file.Close()
	fi, err := file.Stat()
	if err != nil {
		return "", nil, err
	}
	if err := checkSecretMode(path, fi); err != nil {
		return "", nil, err
	}
	data, err := readLimited(file, 64<<10)
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w", path, err)
	}
	s := strings.TrimSpace(string(data))
	if s == "" {
		return "", nil, fmt.Errorf("%s is empty", path)
	}
	if strings.ContainsAny(s, "\r\n") {
		return "", nil, fmt.Errorf("%s holds more than one line", path)
	}
	return s, fi, nil
}

func readLimited(f *os.File, n int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(f, n+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > n {
		return nil, errors.New("larger than a secret can be")
	}
	return data, nil
}

// CheckSecretFile refuses a secret file that is group- or world-readable/writable, or not a
// regular file, with an error naming the path and mode. A token readable by other users on
// the till is a token anyone there can pay with.
//
// A file inside $CREDENTIALS_DIRECTORY (systemd's LoadCredential=) is judged by what that
// directory is: private to this service, read-only, written only by systemd. From systemd 254
// on kernels ≥ 6.3 its files show mode 0440 plus an ACL for the service user, and chmod is
// impossible on that mount, so there the group bits are the ACL mask and are accepted; others
// must still have no access, and the directory must not be writable by anyone but its owner.
func CheckSecretFile(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	return checkSecretMode(path, fi)
}

func checkSecretMode(path string, fi os.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("secret file %s has mode %s: not a regular file", path, fi.Mode())
	}
	perm := fi.Mode().Perm()
	if perm&0o077 == 0 {
		return nil
	}
	if perm&0o007 == 0 && inCredentialsDir(path) {
		return nil
	}
	return fmt.Errorf("secret file %s has mode %04o: group or others may access it; chmod 600 it", path, perm)
}

// inCredentialsDir reports whether path names a file directly or deeper inside the
// service's credentials directory, and that directory is writable by its owner alone.
func inCredentialsDir(path string) bool {
	dir := os.Getenv("CREDENTIALS_DIRECTORY")
	if dir == "" || !filepath.IsAbs(dir) || !filepath.IsAbs(path) {
		return false
	}
	rel, err := filepath.Rel(filepath.Clean(dir), filepath.Clean(path))
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
		return false
	}
	di, err := os.Stat(dir)
	return err == nil && di.IsDir() && di.Mode().Perm()&0o022 == 0
}
