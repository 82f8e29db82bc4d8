from petalops.cli.app import main

main()
