// Package a imports b, which imports c: a depends on c, but does not import it itself.
package a

import _ "example.com/m/b"
