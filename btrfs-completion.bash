# SPDX-License-Identifier: GPL-2.0-only
# bash completion for this btrfs: options of send and receive; every other
# command is completed by btrfs-progs' own completion, loaded first.

_btrfs_progs_completion=/usr/share/bash-completion/completions/btrfs
if ! declare -F _btrfs >/dev/null && [ -r "$_btrfs_progs_completion" ]; then
	. "$_btrfs_progs_completion"
fi

_btrfs_send_receive()
{
	local cur prev cmd i
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD - 1]}
	cmd=
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		--format) ((i++)) ;;
		-*) ;;
		*) cmd=${COMP_WORDS[i]}; break ;;
		esac
	done
	case $cmd in
	send)
		case $prev in
		-p|-c|-i) COMPREPLY=($(compgen -d -- "$cur")); return ;;
		-f) COMPREPLY=($(compgen -f -- "$cur")); return ;;
		--proto) COMPREPLY=($(compgen -W "0 1 2 3" -- "$cur")); return ;;
		--resume) return ;;
		esac
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "-e -p -c -f -q -v --no-data --proto --compressed-data --estimate --progress --resume --changes --file-type --quiet --verbose --help" -- "$cur"))
		else
			COMPREPLY=($(compgen -d -- "$cur"))
		fi
		return ;;
	receive)
		case $prev in
		-f) COMPREPLY=($(compgen -f -- "$cur")); return ;;
		-m|--to-dir|--resume-token|--abort) COMPREPLY=($(compgen -d -- "$cur")); return ;;
		-E|--max-errors|--expected-size) return ;;
		esac
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "-f -e -C -E -m -q -v --chroot --max-errors --force-decompress --dump --changes --file-type --to-dir --progress --expected-size --resume --resume-token --abort --quiet --verbose --help" -- "$cur"))
		else
			COMPREPLY=($(compgen -d -- "$cur"))
		fi
		return ;;
	"")
		if [ "$prev" = --format ]; then
			COMPREPLY=($(compgen -W "text json" -- "$cur"))
			return
		fi ;;
	esac
	if declare -F _btrfs >/dev/null; then
		_btrfs "$@"
	elif [ -z "$cmd" ]; then
		COMPREPLY=($(compgen -W "send receive help version --format --help --version -v -q" -- "$cur"))
	fi
}
complete -F _btrfs_send_receive btrfs
