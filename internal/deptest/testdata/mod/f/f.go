package f
