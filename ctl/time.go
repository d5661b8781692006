package ctl

import "time"

var timeZero time.Time
