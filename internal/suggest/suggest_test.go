package suggest

import "testing"

func TestClosest(t *testing.T) {
	schemes := []string{"file", "lp", "serial", "tcp", "usb"}
	models := []string{"generic", "TM-T88V", "TM-T20II", "TSP600", "TH230"}
	for _, tc := range []struct {
		word  string
		cands []string
		want  string // "" = no suggestion
	}{
		{"pl", schemes, "lp"},
		{"fiel", schemes, "file"},
		{"seriel", schemes, "serial"},
		{"tpc", schemes, "tcp"},
		{"http", schemes, ""},
		{"tmt88v", models, "TM-T88V"},
		{"TM-T88", models, "TM-T88V"},
		{"tm-t20", models, "TM-T20II"},
		{"generik", models, "generic"},
		{"zebra", models, ""},
		{"", models, ""},
	} {
		got, ok := Closest(tc.word, tc.cands)
		if !ok {
			got = ""
		}
		if got != tc.want {
			t.Errorf("Closest(%q) = %q, want %q", tc.word, got, tc.want)
		}
	}
}
