package a_test

import (
	_ "example.com/m/a"
	_ "example.com/m/f"
)
