package identity

import (
	"strings"
	"sync"

	"github.com/trustelem/zxcvbn/frequency"
)

// The blocklist of CheckPassword.
//
// Source: the "passwords" list of github.com/trustelem/zxcvbn v1.0.1,
// package frequency (MIT licence, Copyright (c) 2018 Vincent Vanackere
// and Trustelem), a Go port of Dropbox's zxcvbn 4.4.2 (MIT licence,
// Copyright (c) 2012-2016 Dan Wheeler and Dropbox, Inc.), whose list is the
// 30,000 most frequent passwords of the 10 million passwords Mark Burnett
// published in 2015 (xato.net), lower-cased and ranked by frequency, less
// those that zxcvbn's own date, repeat, sequence and keyboard rules catch
// (CheckPassword has its own rules for those). It is used as a Go module
// dependency, not copied.
//
// extraBlocklist adds common passwords of 12 or more characters that the
// rules of CheckPassword (blocklisted base with digits or symbols added,
// repetitions, keyboard runs) do not already catch, and the product's own
// name, a context-specific word in NIST SP 800-63B's sense. It was written
// for this package from widely published "most common password" reports;
// entries are lower-case and NFKC.
var extraBlocklist = []string{
	"kiops", "kiopsiam", "kiopsadmin", "kiopspassword",
	"correcthorsebatterystaple", "thequickbrownfox",
	"thequickbrownfoxjumpsoverthelazydog", "letmeinplease", "letmeinnow",
	"iloveyoubaby", "iloveyousomuch", "iloveyouforever", "iloveyoutoo",
	"mypassword", "mynewpassword", "newpassword", "nopassword",
	"passwordpassword", "changemeplease", "changemenow", "pleasechangeme",
	"welcometothejungle", "welcomehome", "secretpassword", "supersecret",
	"supersecretpassword", "topsecret", "opensesame", "administrator",
	"adminadmin", "rootroot", "passphrase", "mypassphrase",
	"qwertyuiopasdfghjklzxcvbnm", "1qaz2wsx3edc4rfv5tgb",
	"zaq12wsxcde34rfv", "1q2w3e4r5t6y7u8i9o0p", "q1w2e3r4t5y6u7i8o9p0",
	"qazwsxedcrfvtgbyhn", "asdfghjklqwertyuiop", "happybirthday",
	"merrychristmas", "ihateyou", "fuckyouall", "whatthefuck",
	"harrypotter", "lordoftherings", "gameofthrones", "manchesterunited",
	"realmadrid", "barcelonafc", "liverpoolfc", "chelseafc", "arsenalfc",
	"blink182", "myspace", "facebook", "instagram", "linkedin", "google",
	"microsoft", "windows", "summertime", "wintertime", "springtime",
	"autumnleaves", "sunflower", "butterfly", "strawberry", "chocolate",
	"cheesecake", "pineapple", "watermelon", "icecream", "cookiemonster",
	"spongebob", "squarepants", "spongebobsquarepants", "princesspeach",
	"supermario", "pokemongo", "minecraft", "fortnite", "rockyou",
	"trustno1", "trustnoone", "jesuschrist", "jesuslovesme", "godisgood",
	"blessed", "loveyou", "lovelove", "babygirl", "princess",
}

type blockset map[string]struct{}

func (b blockset) has(s string) bool {
	_, ok := b[s]
	return ok
}

// blocklist returns the index of the blocklist, built on first use.
var blocklist = sync.OnceValue(func() blockset {
	list := zxcvbnPasswords()
	b := make(blockset, len(list)+len(extraBlocklist))
	for _, s := range list {
		b[strings.ToLower(s)] = struct{}{}
	}
	for _, s := range extraBlocklist {
		b[s] = struct{}{}
	}
	return b
})

// zxcvbnPasswords returns zxcvbn's password list, most common first.
func zxcvbnPasswords() []string { return frequency.FrequencyLists["passwords"] }
