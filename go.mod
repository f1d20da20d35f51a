module github.com/ecrd-pos/ecrd

go 1.26.8

require (
	github.com/coreos/go-systemd/v22 v22.7.0
	github.com/creack/pty v1.1.24
	github.com/google/gousb v1.1.3
	github.com/kenshaw/escpos v0.0.0-20221114190919-df06b682a8fc
	go.uber.org/zap v1.28.0
	golang.org/x/image v0.48.0
	golang.org/x/sys v0.50.0
	golang.org/x/text v0.44.0
)

require go.uber.org/multierr v1.10.0 // indirect
