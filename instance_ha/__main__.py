from instance_ha.cli import main

main()
