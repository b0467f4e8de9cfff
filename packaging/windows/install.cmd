@echo off
rem epost-shipper: check shipper.toml, register the Windows service `epost-shipper` and start
rem it, from the folder this script is in. Needs an elevated prompt (Run as administrator);
rem from a plain one it asks Windows (UAC) to start itself elevated.
rem Run it again after editing shipper.toml: the service is registered anew with it.
rem (Messages are in English only: cmd reads a script in the console's code page.)
setlocal
set "HERE=%~dp0"
set "EXE=%HERE%epost-shipper.exe"
set "CONFIG=%HERE%shipper.toml"
if exist "%EXE%" goto have_exe
echo install.cmd: "%EXE%" is missing: unzip the whole package first.
exit /b 1
:have_exe

rem `net session` succeeds only in an elevated prompt.
net session >nul 2>&1
if errorlevel 1 goto not_admin

echo == epost-shipper check --config "%CONFIG%"
"%EXE%" check --config "%CONFIG%"
set "RC=%errorlevel%"
if "%RC%"=="2" goto bad_config
if not "%RC%"=="0" (
    echo.
    echo install.cmd: check reported a problem above [exit %RC%]: a sink not reachable yet
    echo or a log file not readable. Installing anyway: the service retries, and what it
    echo cannot send yet waits in the checkpoint. Fix it and run `check` again.
)

sc query epost-shipper >nul 2>&1
if errorlevel 1 goto install
echo == the service is already installed: removing it to register it with this config
"%EXE%" service uninstall
if errorlevel 1 goto failed

:install
echo == epost-shipper service install --config "%CONFIG%"
"%EXE%" service install --config "%CONFIG%"
if errorlevel 1 goto failed

echo == sc start epost-shipper
set /a STARTS=0
:start_service
set /a STARTS+=1
sc start epost-shipper >nul
set /a WAITED=0
:wait_running
sc query epost-shipper | find "RUNNING" >nul
if not errorlevel 1 goto running
set /a WAITED+=1
rem a service that did not connect in time (a loaded machine at boot) is STOPPED: start it
rem again, three times at most
if %WAITED% geq 10 sc query epost-shipper | find "STOPPED" >nul
if %WAITED% geq 10 if not errorlevel 1 if %STARTS% lss 3 goto start_service
if %WAITED% geq 30 goto not_running
rem one second (timeout.exe is not on every Windows, nor under Wine)
ping -n 2 127.0.0.1 >nul
goto wait_running

:running
echo.
echo install.cmd: the service epost-shipper is RUNNING (automatic start at boot).
echo Its own log: the epost-shipper.log named above. Stop: sc stop epost-shipper.
echo Remove: uninstall.cmd.
goto end

:not_running
echo install.cmd: the service did not reach RUNNING within 30 s:
sc query epost-shipper
echo See epost-shipper.log in the state folder (default C:\ProgramData\epost-shipper).
set "RC=1"
goto end_rc

:bad_config
echo.
echo install.cmd: shipper.toml is not valid (the message above names the line and key).
echo Nothing was installed. Edit "%CONFIG%" and run install.cmd again.
set "RC=2"
goto end_rc

:failed
echo install.cmd: the step above failed [exit %errorlevel%]; see its message.
set "RC=1"
goto end_rc

:not_admin
echo install.cmd: this needs an elevated prompt (right-click, "Run as administrator").
if /i "%~1"=="/elevated" goto no_elevation
where powershell >nul 2>&1
if errorlevel 1 goto no_elevation
echo install.cmd: asking Windows for administrator rights (UAC) ...
powershell -NoProfile -ExecutionPolicy Bypass -Command "Start-Process -FilePath '%~f0' -ArgumentList '/elevated' -Verb RunAs" >nul 2>&1
if errorlevel 1 goto no_elevation
echo install.cmd: continuing in the elevated window.
exit /b 0
:no_elevation
echo install.cmd: not elevated; nothing was installed.
set "RC=1"
goto end_rc

:end
set "RC=0"
:end_rc
rem the elevated window opened by UAC would close before its output could be read
if /i "%~1"=="/elevated" pause
exit /b %RC%
