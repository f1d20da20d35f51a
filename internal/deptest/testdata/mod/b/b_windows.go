package b

import _ "example.com/m/e"
