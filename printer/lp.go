package printer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// parseLP parses lp:PATH?options.
func parseLP(t *target, rest string, opts uriOptions) (err error) {
	if t.path, err = devicePath("lp", rest); err != nil {
		return err
	}
	return opts.device(&t.dev)
}

// lpDialer opens a usblp character device (/dev/usb/lp0). usblp allows reads only from
// bidirectional printers, so the device is opened read-write and a read that the kernel refuses
// (EINVAL) becomes ErrNoReadBack, which Status reports as unknown. FIFOs and regular files are
// opened write-only: reading a FIFO we also write would return our own job bytes as "status".
//
// The fd is nonblocking and handed to Go's poller, which gives usblp and FIFOs real deadlines
// (usblp's own write never times out).
func lpDialer(path string) Dialer {
	return func(ctx context.Context) (Conn, error) {
		fi, err := os.Stat(path)
		if err != nil {
			return nil, err // ENOENT: unplugged, or the udev symlink is gone
		}
		flags := unix.O_NONBLOCK | unix.O_CLOEXEC | unix.O_NOCTTY
		readable := false
		switch mode := fi.Mode(); {
		case mode&os.ModeCharDevice != 0:
			flags |= unix.O_RDWR
			readable = true
		case mode&os.ModeNamedPipe != 0:
			flags |= unix.O_WRONLY
		case mode.IsRegular():
			flags |= unix.O_WRONLY | unix.O_APPEND
		default:
			return nil, fmt.Errorf("%s is a %v, not a printer device", path, mode.Type())
		}
		fd, err := unix.Open(path, flags, 0)
		if err == unix.EACCES && readable {
			// Write permission is all printing needs; status then reads as unknown.
			flags, readable = flags&^unix.O_RDWR|unix.O_WRONLY, false
			fd, err = unix.Open(path, flags, 0)
		}
		if err == unix.ENXIO && fi.Mode()&os.ModeNamedPipe != 0 {
			return nil, fmt.Errorf("open %s: no reader on the FIFO: %w", path, err)
		}
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: path, Err: err}
		}
		return &lpConn{File: os.NewFile(uintptr(fd), path), readable: readable, chardev: fi.Mode()&os.ModeCharDevice != 0}, nil
	}
}

type lpConn struct {
	*os.File
	readable bool
	chardev  bool // a device node: usblp answers LPIOC_GET_DEVICE_ID
}

// lpiocGetDeviceID is usblp's LPIOC_GET_DEVICE_ID(len): _IOC(_IOC_READ, 'P', 1, len)
// (linux/drivers/usb/class/usblp.c). usblp fetched the ID from the printer when it bound and
// hands back its two length bytes and the string.
func lpiocGetDeviceID(n int) uintptr { return 2<<30 | uintptr(n)<<16 | 'P'<<8 | 1 }

func (c *lpConn) RawDeviceID(ctx context.Context) ([]byte, error) {
	if !c.chardev {
		return nil, fmt.Errorf("%s is not a device node: %w", c.Name(), ErrNoDeviceID)
	}
	buf := make([]byte, 1024)
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var errno syscall.Errno
	if err := rc.Control(func(fd uintptr) {
		_, _, errno = unix.Syscall(unix.SYS_IOCTL, fd, lpiocGetDeviceID(len(buf)), uintptr(unsafe.Pointer(&buf[0])))
	}); err != nil {
		return nil, err
	}
	if errno != 0 {
		if errno == unix.ENOTTY || errno == unix.EINVAL {
			return nil, fmt.Errorf("%s: LPIOC_GET_DEVICE_ID: %v: %w", c.Name(), errno, ErrNoDeviceID)
		}
		return nil, fmt.Errorf("%s: LPIOC_GET_DEVICE_ID: %w", c.Name(), errno)
	}
	return buf, nil
}

func (c *lpConn) Read(b []byte) (int, error) {
	if !c.readable {
		return 0, fmt.Errorf("%s: %w (write-only)", c.Name(), ErrNoReadBack)
	}
	n, err := c.File.Read(b)
	if errors.Is(err, syscall.EINVAL) {
		return n, fmt.Errorf("%s: %w (usblp: printer is unidirectional)", c.Name(), ErrNoReadBack)
	}
	return n, err
}
