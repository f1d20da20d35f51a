package receipt

// Validate reports whether Render and Preview accept o (columns in range, a known code page
// and cut mode), in the same words they would use — so that a daemon can refuse a bad
// setting at start instead of failing every receipt.
func (o Options) Validate() error {
	_, err := o.config()
	return err
}
