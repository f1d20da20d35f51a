//go:build special

package a

import _ "example.com/m/e"
