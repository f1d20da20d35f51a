package promtext

import (
	"bytes"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// StandardMetrics adds the process's go_* and process_* metrics, under the names and
// meanings Prometheus' Go client gives them, so that a fleet's dashboards for Go services
// read them unchanged. Only Linux's /proc is read.
func (r *Registry) StandardMetrics() {
	r.Collect(writeGo)
	r.Collect(writeProcess)
}

func writeGo(w *Writer) {
	w.Gauge("go_goroutines", "Number of goroutines that currently exist.", float64(runtime.NumGoroutine()))
	// From /proc, not from runtime/pprof as the client does: importing runtime/pprof keeps the
	// heap profiler linked in, whose bucket table costs the daemon 1.5 MiB of resident memory.
	if n := threads(); n > 0 {
		w.Gauge("go_threads", "Number of OS threads created.", float64(n))
	}
	w.Gauge("go_info", "Information about the Go environment.", 1, "version", runtime.Version())
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	w.Gauge("go_memstats_alloc_bytes", "Number of bytes allocated in heap and currently in use.", float64(ms.Alloc))
	w.Counter("go_memstats_alloc_bytes_total", "Total number of bytes allocated in heap until now, even if released already.", float64(ms.TotalAlloc))
	w.Gauge("go_memstats_heap_alloc_bytes", "Number of heap bytes allocated and currently in use.", float64(ms.HeapAlloc))
	w.Gauge("go_memstats_heap_idle_bytes", "Number of heap bytes waiting to be used.", float64(ms.HeapIdle))
	w.Gauge("go_memstats_heap_inuse_bytes", "Number of heap bytes that are in use.", float64(ms.HeapInuse))
	w.Gauge("go_memstats_heap_released_bytes", "Number of heap bytes released to OS.", float64(ms.HeapReleased))
	w.Gauge("go_memstats_heap_objects", "Number of currently allocated objects.", float64(ms.HeapObjects))
	w.Gauge("go_memstats_stack_inuse_bytes", "Number of bytes obtained from system for stack allocator in non-CGO environments.", float64(ms.StackInuse))
	w.Gauge("go_memstats_sys_bytes", "Number of bytes obtained from system.", float64(ms.Sys))
	w.Gauge("go_memstats_next_gc_bytes", "Number of heap bytes when next garbage collection will take place.", float64(ms.NextGC))
	w.Gauge("go_memstats_last_gc_time_seconds", "Number of seconds since 1970 of last garbage collection.", float64(ms.LastGC)/1e9)
	w.Counter("go_memstats_mallocs_total", "Total number of heap objects allocated, both live and gc-ed.", float64(ms.Mallocs))
	w.Counter("go_memstats_frees_total", "Total number of heap objects frees.", float64(ms.Frees))
	w.Gauge("go_memstats_heap_sys_bytes", "Number of heap bytes obtained from system.", float64(ms.HeapSys))
	w.Gauge("go_memstats_stack_sys_bytes", "Number of bytes obtained from system for stack allocator.", float64(ms.StackSys))
	w.Gauge("go_memstats_mspan_inuse_bytes", "Number of bytes in use by mspan structures.", float64(ms.MSpanInuse))
	w.Gauge("go_memstats_mspan_sys_bytes", "Number of bytes used for mspan structures obtained from system.", float64(ms.MSpanSys))
	w.Gauge("go_memstats_mcache_inuse_bytes", "Number of bytes in use by mcache structures.", float64(ms.MCacheInuse))
	w.Gauge("go_memstats_mcache_sys_bytes", "Number of bytes used for mcache structures obtained from system.", float64(ms.MCacheSys))
	w.Gauge("go_memstats_buck_hash_sys_bytes", "Number of bytes used by the profiling bucket hash table.", float64(ms.BuckHashSys))
	w.Gauge("go_memstats_gc_sys_bytes", "Number of bytes used for garbage collection system metadata.", float64(ms.GCSys))
	w.Gauge("go_memstats_other_sys_bytes", "Number of bytes used for other system allocations.", float64(ms.OtherSys))
	w.Gauge("go_sched_gomaxprocs_threads", "The current runtime.GOMAXPROCS setting, or the number of operating system threads that can execute user-level Go code simultaneously.", float64(runtime.GOMAXPROCS(0)))
	samples := []metrics.Sample{{Name: "/gc/gogc:percent"}, {Name: "/gc/gomemlimit:bytes"}}
	metrics.Read(samples)
	if samples[0].Value.Kind() == metrics.KindUint64 {
		w.Gauge("go_gc_gogc_percent", "Heap size target percentage configured by the user, otherwise 100.", float64(samples[0].Value.Uint64()))
	}
	if samples[1].Value.Kind() == metrics.KindUint64 {
		w.Gauge("go_gc_gomemlimit_bytes", "Go runtime memory limit configured by the user, otherwise math.MaxInt64.", float64(samples[1].Value.Uint64()))
	}
	writeGCPauses(w)
}

// writeGCPauses writes go_gc_duration_seconds, the summary of stop-the-world pauses: the
// minimum, quartiles and maximum of the pauses the runtime remembers (the last 256).
func writeGCPauses(w *Writer) {
	const name = "go_gc_duration_seconds"
	st := debug.GCStats{PauseQuantiles: make([]time.Duration, 5)}
	debug.ReadGCStats(&st)
	w.header(name, "A summary of the wall-time pause (stop-the-world) duration in garbage collection cycles.", "summary")
	for i, q := range []string{"0", "0.25", "0.5", "0.75", "1"} {
		w.sample(name, st.PauseQuantiles[i].Seconds(), "quantile", q)
	}
	w.sample(name+"_sum", st.PauseTotal.Seconds())
	w.sample(name+"_count", float64(st.NumGC))
}

// threads counts the process's OS threads (/proc/self/status), 0 when it cannot tell.
func threads() int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times: 100 on every Linux
// architecture Go supports.
const clockTicks = 100

func writeProcess(w *Writer) {
	if st, err := readStat(); err == nil {
		w.Counter("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", st.cpu)
		w.Gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", st.vsize)
		w.Gauge("process_resident_memory_bytes", "Resident memory size in bytes.", st.rss)
		if st.start > 0 {
			w.Gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", st.start)
		}
	}
	if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
		w.Gauge("process_open_fds", "Number of open file descriptors.", float64(len(ents)))
	}
	var lim unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &lim) == nil {
		w.Gauge("process_max_fds", "Maximum number of open file descriptors.", float64(lim.Cur))
	}
	if unix.Getrlimit(unix.RLIMIT_AS, &lim) == nil {
		w.Gauge("process_virtual_memory_max_bytes", "Maximum amount of virtual memory available in bytes.", float64(lim.Cur))
	}
	if rx, tx, err := netBytes(); err == nil {
		w.Counter("process_network_receive_bytes_total", "Number of bytes received by the process over the network.", rx)
		w.Counter("process_network_transmit_bytes_total", "Number of bytes sent by the process over the network.", tx)
	}
}

// netBytes sums the bytes received and sent over every interface of the process's network
// namespace (/proc/self/net/dev), as the Prometheus client does.
func netBytes() (rx, tx float64, err error) {
	b, err := os.ReadFile("/proc/self/net/dev")
	if err != nil {
		return 0, 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		_, counters, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(counters)
		if len(f) < 9 {
			continue
		}
		r, _ := strconv.ParseFloat(f[0], 64)
		t, _ := strconv.ParseFloat(f[8], 64)
		rx += r
		tx += t
	}
	return rx, tx, nil
}

type procStat struct{ cpu, vsize, rss, start float64 }

// readStat reads this process's CPU time, memory and start time from /proc/self/stat
// (proc(5)); the start time is relative to boot, which /proc/stat's btime dates.
func readStat() (procStat, error) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return procStat{}, err
	}
	// The command name is in parentheses and may hold spaces: fields start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, os.ErrInvalid
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state): utime is field 14, stime 15, starttime 22, vsize 23, rss 24.
	if len(f) < 22 {
		return procStat{}, os.ErrInvalid
	}
	num := func(field int) float64 {
		v, _ := strconv.ParseFloat(f[field-3], 64)
		return v
	}
	st := procStat{
		cpu:   (num(14) + num(15)) / clockTicks,
		vsize: num(23),
		rss:   num(24) * float64(os.Getpagesize()),
	}
	if bt := bootTime(); !bt.IsZero() {
		st.start = float64(bt.Unix()) + num(22)/clockTicks
	}
	return st, nil
}

func bootTime() time.Time {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return time.Time{}
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			if s, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
				return time.Unix(s, 0)
			}
		}
	}
	return time.Time{}
}
