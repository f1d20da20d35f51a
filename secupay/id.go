package secupay

// maxIDChars bounds the part after "STX_". Real ids have 30 characters; the slack allows for a
// longer format without letting an id grow into something that bloats URLs and logs.
const maxIDChars = 64

// ValidID reports whether id is a Smart Transaction id safe to put in a URL path: "STX_"
// followed by 1–64 ASCII letters or digits. Everything else ("../x", "STX_a/b", "STX_%2F",
// non-ASCII) is refused so that a value from the POS can never reach another endpoint.
func ValidID(id string) bool {
	const prefix = "STX_"
	if len(id) <= len(prefix) || len(id) > len(prefix)+maxIDChars || id[:len(prefix)] != prefix {
		return false
	}
	for i := len(prefix); i < len(id); i++ {
		c := id[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}
