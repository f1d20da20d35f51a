package legacy

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The old state directory as the old code saw it: the files, with the write-ahead log's
// committed changes laid over them in memory. The old code replayed the log into the files at
// every start (internal/wal at commit 30fc41b, Open and replay); the importer must not write
// the old files, so it reads through the changes instead (as the old journal's read did
// through wal.Log.Committed).

// The log's frame, as internal/wal at commit 30fc41b wrote it: magic, payload length and the
// payload's CRC-32C, each a little-endian uint32, then the payload, a JSON array of ops.
const (
	frameMagic  = 0xEC4D_0A1E
	frameHeader = 12
	maxFrame    = 64 << 20 // the old replay's bound: a longer length is no frame
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// op is one file change of a frame (wal.Op at commit 30fc41b).
type op struct {
	Path   string `json:"p"`
	Data   []byte `json:"d,omitempty"`
	Remove bool   `json:"r,omitempty"`
}

// change is the latest committed change to one path.
type change struct {
	data    []byte
	removed bool
	mod     time.Time // the log's modification time: the change was committed by then
}

// tree reads the old state directory with the log's changes laid over it.
type tree struct {
	dir  string
	over map[string]*change // by slash path relative to dir
}

// frameAt decodes the frame at the start of b (wal.frameAt at commit 30fc41b): its ops and
// its length, or false for a torn or corrupt one.
func frameAt(b []byte) ([]op, int, bool) {
	if len(b) < frameHeader || binary.LittleEndian.Uint32(b) != frameMagic {
		return nil, 0, false
	}
	n := binary.LittleEndian.Uint32(b[4:])
	if n > maxFrame || int(n) > len(b)-frameHeader {
		return nil, 0, false
	}
	payload := b[frameHeader : frameHeader+int(n)]
	if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(b[8:]) {
		return nil, 0, false
	}
	var ops []op
	if err := json.Unmarshal(payload, &ops); err != nil {
		return nil, 0, false
	}
	return ops, frameHeader + int(n), true
}

// nextMagic is the offset of the next frame's magic in data at or after from, or len(data).
func nextMagic(data []byte, from int) int {
	if from >= len(data) {
		return len(data)
	}
	var m [4]byte
	binary.LittleEndian.PutUint32(m[:], frameMagic)
	i := bytes.Index(data[from:], m[:])
	if i < 0 {
		return len(data)
	}
	return from + i
}

// logs returns the log files of dir/wal in the order the old code replayed them: by the
// number in their name (wal.generations: any NAME.log whose NAME is a number).
func logs(dir string) ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(dir, "wal"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	type gen struct {
		n    uint64
		name string
	}
	var gens []gen
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".log")
		if !ok || e.IsDir() {
			continue
		}
		n, err := strconv.ParseUint(name, 10, 64)
		if err != nil {
			continue
		}
		gens = append(gens, gen{n, e.Name()})
	}
	sort.Slice(gens, func(i, j int) bool { return gens[i].n < gens[j].n })
	out := make([]string, len(gens))
	for i, g := range gens {
		out[i] = "wal/" + g.name
	}
	return out, nil
}

// openTree replays the logs of dir into memory, as the old replay applied them to the files:
// every whole frame in order; a torn or corrupt frame is skipped and the replay resumes at the
// next magic after its start, so that one bad frame does not take the committed ones after it.
func openTree(dir string, rep *Report) (*tree, error) {
	t := &tree{dir: dir, over: map[string]*change{}}
	names, err := logs(dir)
	if err != nil {
		return nil, fmt.Errorf("legacy: %w", err)
	}
	for _, name := range names {
		p := filepath.Join(dir, filepath.FromSlash(name))
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("legacy: %w", err)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("legacy: %w", err)
		}
		rep.Logs++
		bad := -1 // start of a run of bytes that are no frame
		skip := func(end int) {
			if bad >= 0 {
				rep.SkippedFrames++
				rep.problem(name, true, fmt.Sprintf("bytes %d to %d are a torn or corrupt frame", bad, end),
					"skipped, as the old replay skipped them")
				bad = -1
			}
		}
		off := 0
		for off < len(data) {
			ops, n, ok := frameAt(data[off:])
			if !ok {
				if bad < 0 {
					bad = off
				}
				off = nextMagic(data, off+1)
				continue
			}
			skip(off)
			rep.Frames++
			for _, o := range ops {
				rel := path.Clean(o.Path)
				if o.Path == "" || !filepath.IsLocal(filepath.FromSlash(rel)) {
					rep.problem(name, true, fmt.Sprintf("a change at byte %d names %q, not a path inside the state directory", off, o.Path),
						"skipped (the old replay could not apply it either)")
					continue
				}
				t.over[rel] = &change{data: o.Data, removed: o.Remove, mod: fi.ModTime()}
			}
			off += n
		}
		skip(len(data))
	}
	return t, nil
}

// read returns the file rel (slash path) as committed, and when it was written: the log's
// change if it holds one (fs.ErrNotExist if that removed it), else the file.
func (t *tree) read(rel string) ([]byte, time.Time, error) {
	if c, ok := t.over[rel]; ok {
		if c.removed {
			return nil, time.Time{}, fs.ErrNotExist
		}
		return c.data, c.mod, nil
	}
	p := filepath.Join(t.dir, filepath.FromSlash(rel))
	f, err := os.Open(p)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, time.Time{}, err
	}
	if fi.IsDir() {
		return nil, time.Time{}, fmt.Errorf("%s is a directory", rel)
	}
	b, err := readAll(f, fi.Size())
	return b, fi.ModTime(), err
}

func readAll(f *os.File, size int64) ([]byte, error) {
	var buf bytes.Buffer
	if size > 0 && size < 1<<30 {
		buf.Grow(int(size) + 1)
	}
	_, err := buf.ReadFrom(f)
	return buf.Bytes(), err
}

// list returns the names of the files directly in directory rel (slash path) as committed:
// those on disk and those the log wrote, less those it removed; sorted.
func (t *tree) list(rel string) ([]string, error) {
	names := map[string]bool{}
	ents, err := os.ReadDir(filepath.Join(t.dir, filepath.FromSlash(rel)))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	for _, e := range ents {
		if !e.IsDir() {
			names[e.Name()] = true
		}
	}
	for p, c := range t.over {
		if path.Dir(p) != rel {
			continue
		}
		names[path.Base(p)] = !c.removed
	}
	out := make([]string, 0, len(names))
	for n, ok := range names {
		if ok {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out, nil
}
